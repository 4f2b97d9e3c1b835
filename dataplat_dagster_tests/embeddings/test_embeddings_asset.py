"""The embeddings asset in a project's code location: downstream of its dataset, in the
``compute_embeddings`` job, re-requested by its automation condition once the dataset has a
new version, and an input of a user's asset through the ``dataplat_embeddings`` IO manager."""

import numpy as np
from dagster import AssetIn, AssetKey, Definitions, asset, evaluate_automation_conditions, instance_for_test

from dataplat_dagster import project_definitions
from dataplat_dagster.embeddings.loading import StoredEmbeddings
from dataplat_dagster.workspace import Workspace

ROWS = "size,shape\n" + "".join(f"{i % 7 + (0 if i % 2 else 40)},{'round' if i % 2 else 'square'}\n" for i in range(40))


def make_project(tmp_path):
    workspace = Workspace.init(tmp_path / "ws")
    project = workspace.create_project("lab")
    (project.dir / "things.csv").write_text(ROWS)
    text = project.catalog_path.read_text().replace(
        "datasets: {}",
        "datasets:\n  things:\n    source:\n      path: things.csv\n"
        "embeddings:\n  things:\n    input: dataset\n    map: pca\n",
    )
    project.catalog_path.write_text(text)
    return project


def test_embeddings_asset_follows_its_dataset_and_feeds_a_users_asset(tmp_path):
    project = make_project(tmp_path)
    key, dataset = AssetKey(["lab", "embeddings", "things"]), AssetKey(["lab", "datasets", "things"])

    @asset(ins={"embeddings": AssetIn(key=key)})
    def nearest_pairs(embeddings: StoredEmbeddings) -> int:
        assert isinstance(embeddings, StoredEmbeddings)
        return int((embeddings.distances[:, 0] < 1e-6).sum())

    defs = Definitions.merge(project_definitions(project.definitions_file), Definitions(assets=[nearest_pairs]))
    graph = defs.resolve_asset_graph()
    assert graph.get(key).parent_keys == {dataset}
    assert "embeddings" in graph.get(key).kinds
    assert defs.resolve_job_def("compute_embeddings").asset_layer.selected_asset_keys == {key}

    with instance_for_test() as instance:
        everything = defs.resolve_implicit_global_asset_job_def()
        result = everything.execute_in_process(instance=instance, asset_selection=[dataset, key, nearest_pairs.key])
        assert result.success
        metadata = result.asset_materializations_for_node(key.to_python_identifier())[0].metadata
        assert metadata["dagster/row_count"].value == 40 and metadata["kind"].value == "tabular"
        # 20 rows "round" and 20 "square" over 7 sizes: each has exact twins, at distance 0.
        assert result.output_for_node("nearest_pairs") == 40

        # Nothing to do while the embeddings are newer than the dataset...
        evaluation = evaluate_automation_conditions(defs=defs, instance=instance)
        assert evaluation.get_num_requested(key) == 0
        # ... a new version of the dataset makes the automation request them again.
        assert everything.execute_in_process(instance=instance, asset_selection=[dataset]).success
        evaluation = evaluate_automation_conditions(defs=defs, instance=instance, cursor=evaluation.cursor)
        assert evaluation.get_num_requested(key) == 1


def test_stored_embeddings_answer_neighbours_from_storage(tmp_path):
    project = make_project(tmp_path)
    defs = project_definitions(project.definitions_file)
    key, dataset = AssetKey(["lab", "embeddings", "things"]), AssetKey(["lab", "datasets", "things"])
    with instance_for_test() as instance:
        job = defs.resolve_implicit_global_asset_job_def()
        assert job.execute_in_process(instance=instance, asset_selection=[dataset, key]).success
    from dataplat_dagster.embeddings.loading import load_embeddings

    stored = load_embeddings("things", project.dir)
    assert len(stored) == 40 and stored.vectors.dtype == np.float32 and stored.coordinates.shape == (40, 2)
    # Row 0 (size 40, square) has exact twins: rows 14 and 28 (the same values).
    twins = [stored.ids[p] for p, d in stored.neighbors_of("0", 2)]
    assert sorted(twins) == ["14", "28"]
    assert stored.info["map"]["method"] == "pca" and stored.info["input"] == "dataset"
