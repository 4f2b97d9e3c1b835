"""A contender of bench/definitions_load.py, run in a fresh interpreter as a code server
loads a code location.

    python definitions_load.py ours PROJECT_DIR
    python definitions_load.py bare PROJECT_DIR DATASETS

``ours`` is ``project_definitions(PROJECT_DIR)``; ``bare`` is Dagster alone, reading no
storage: one plain asset per dataset, named and described as the bench registers them
(``sales_000``, ...), and one job selecting them all. Either way the repository snapshot a code server sends to the
webserver (``RepositorySnap.from_def``, serialized) is built too. Prints one JSON line:
``{"import_s", "load_s", "snapshot_s", "snapshot_bytes", "assets"}``; ``load_s`` counts
building the definitions, reading the catalog and the registry included.
"""

import json
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    contender, project_dir = sys.argv[1], sys.argv[2]
    started = time.perf_counter()
    from dagster import Definitions, asset, define_asset_job
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster._serdes import serialize_value

    from dataplat_dagster import project_definitions

    imported = time.perf_counter()
    if contender == "ours":
        defs = project_definitions(project_dir)
    else:
        project = Path(project_dir).name
        def plain(name: str, description: str | None):
            @asset(key=[project, "datasets", name], group_name=project, description=description)
            def _plain() -> None: ...

            return _plain

        assets = [plain(f"sales_{k:03d}", f"Monthly sales export {k}.") for k in range(int(sys.argv[3]))]
        defs = Definitions(assets=assets, jobs=[define_asset_job("all", selection=assets)])
    repository = defs.get_repository_def()
    repository.get_all_jobs()  # definitions resolve lazily: count their building in the load
    loaded = time.perf_counter()
    snapshot = serialize_value(RepositorySnap.from_def(repository))
    done = time.perf_counter()
    print(json.dumps({
        "import_s": imported - started, "load_s": loaded - imported, "snapshot_s": done - loaded,
        "snapshot_bytes": len(snapshot.encode()), "assets": len(repository.asset_graph.get_all_asset_keys()),
    }))
