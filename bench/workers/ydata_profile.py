"""The ydata-profiling contender of bench/profile.py; runs in bench/.venv-ydata.

    python ydata_profile.py FILE.parquet

Loads the file into pandas (dates as datetime64), then times
``ProfileReport(df, minimal=True).get_description()``. Prints one JSON line:
``{"rows", "load_s", "profile_s", "version"}``.
"""

import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import pyarrow.parquet as pq  # noqa: E402
import ydata_profiling  # noqa: E402
from ydata_profiling import ProfileReport  # noqa: E402

if __name__ == "__main__":
    started = time.perf_counter()
    frame = pq.read_table(sys.argv[1]).to_pandas(date_as_object=False)
    loaded = time.perf_counter()
    ProfileReport(frame, minimal=True, progress_bar=False).get_description()
    done = time.perf_counter()
    result = {"rows": len(frame), "load_s": loaded - started, "profile_s": done - loaded,
              "version": ydata_profiling.__version__}
    print(json.dumps(result))
