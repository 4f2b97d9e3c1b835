"""A contender of bench/profile.py's wide-table case, run as a child so that its peak RSS
is its own (``os.wait4``).

    python wide_profile.py ours|duckdb FILE.parquet

``ours`` is ``profile_parquet(FILE)``; ``duckdb`` is ``SUMMARIZE`` of the file on a fresh
in-memory connection with DuckDB's default settings. Prints one JSON line: ``{"seconds",
"columns"}`` (the columns the result describes).
"""

import json
import sys
import time

if __name__ == "__main__":
    contender, path = sys.argv[1], sys.argv[2]
    if contender == "ours":
        from dataplat_dagster.profile.stats import profile_parquet

        started = time.perf_counter()
        columns = len(profile_parquet(path)["columns"])
    else:
        import duckdb

        source = "read_parquet('" + path.replace("'", "''") + "')"
        started = time.perf_counter()
        with duckdb.connect(":memory:") as con:
            columns = len(con.execute(f"SUMMARIZE SELECT * FROM {source}").fetchall())
    print(json.dumps({"seconds": time.perf_counter() - started, "columns": columns}))
