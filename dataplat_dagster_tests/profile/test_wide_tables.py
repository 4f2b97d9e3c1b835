"""Wide tables: thousands of columns import and profile, one query per batch of columns,
and the profile says which columns its pairwise correlations cover."""

from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataplat_dagster.profile import stats as profile_module
from dataplat_dagster.profile.stats import MAX_CRAMERS_V_COLUMNS, MAX_PEARSON_COLUMNS, profile_parquet

COLUMNS = 2000
ROWS = 300


def wide_csv(path, columns: int = COLUMNS, rows: int = ROWS) -> None:
    """Columns cycle integer / float / text; ``c0`` is constant. The last row repeats the
    first, and the one before it differs from the second only in the last column."""
    def cell(row: int, k: int) -> str:
        if k % 3 == 0:
            return str(row * k % 97)
        if k % 3 == 1:
            return f"{row * 0.5 + k:.2f}"
        return f"w{(row + k) % 5}"

    lines = [[cell(row, k) for k in range(columns)] for row in range(rows - 2)]
    lines.append(lines[1][:-1] + ["different"])
    lines.append(lines[0])
    with path.open("w") as out:
        out.write(",".join(f"c{k}" for k in range(columns)) + "\n")
        out.writelines(",".join(line) + "\n" for line in lines)


def test_two_thousand_columns_import_and_profile_through_the_cli(cli_workspace, tmp_path):
    source = tmp_path / "wide.csv"
    wide_csv(source)
    imported = cli_workspace.run("dataset", "import", str(source), "--name", "wide", "--json", timeout=600).json()
    assert (imported["status"], imported["rows"], imported["columns"]) == ("ready", ROWS, COLUMNS)

    columns = cli_workspace.run("dataset", "show", "wide", "--columns", "--json").json()
    assert [c["name"] for c in columns] == [f"c{k}" for k in range(COLUMNS)]
    assert [c["type"] for c in columns[:6]] == ["integer", "float", "text", "integer", "float", "text"]
    assert (columns[0]["min"], columns[0]["max"], columns[0]["distinct"]) == (0, 0, 1)
    assert (columns[1996]["type"], columns[1996]["min"], columns[1996]["max"]) == ("float", 1996.0, 2144.5)
    # The last column would be a float, but it holds "different" once.
    assert columns[1999]["type"] == "text"
    assert columns[1999]["distinct"] == 299
    assert columns[1999]["top_values"][0] == {"value": "1999.00", "count": 2}

    shown = cli_workspace.run("dataset", "show", "wide", "--json").json()
    assert shown["summary"]["duplicate_rows"] == 1
    correlations = shown["correlations"]
    # 667 integer columns and 666 float ones; the integers of c0, c291, c582, ... (row * k % 97
    # with k a multiple of 97) are constant: 1,326 numeric columns vary.
    assert correlations["selection"]["pearson"] == {
        "rule": f"the first {MAX_PEARSON_COLUMNS} numeric columns that vary, in table order",
        "max_columns": MAX_PEARSON_COLUMNS, "eligible": 1326, "columns": MAX_PEARSON_COLUMNS, "left_out": 1296,
    }
    # The constant c0 is skipped: the first 30 varying ones are c1, c3, c4, c6, ...
    expected = [f"c{k}" for k in range(1, COLUMNS) if k % 3 != 2][:MAX_PEARSON_COLUMNS]
    assert correlations["pearson"]["columns"] == expected
    cramers = correlations["selection"]["cramers_v"]
    assert (cramers["eligible"], cramers["columns"], cramers["left_out"]) == (666, 10, 656)
    assert correlations["cramers_v"]["columns"] == [f"c{k}" for k in range(2, 32, 3)]


def write(tmp_path, columns: dict):
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table(columns), path)
    return path


def test_duplicate_rows_are_exact_across_column_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(profile_module, "COLUMNS_PER_QUERY", 2)
    # Rows 0 and 3 are equal; rows 1 and 2 differ only in the last column, in the last batch.
    path = write(tmp_path, {
        "a": [1, 2, 2, 1, 5], "b": ["x", "y", "y", "x", "z"], "c": [0.5, 1.0, 1.0, 0.5, 2.0],
        "d": [True, False, False, True, None], "e": [7, 8, 9, 7, None],
    })
    profile = profile_parquet(path)
    assert profile["summary"]["duplicate_rows"] == 1
    assert [c["name"] for c in profile["columns"]] == ["a", "b", "c", "d", "e"]
    assert [c["distinct"] for c in profile["columns"]] == [3, 3, 3, 2, 3]


def test_cramers_v_pairs_only_the_first_columns_that_qualify(tmp_path):
    rows = 40
    columns = {f"t{k}": [f"v{(r // (k + 1)) % 3}" for r in range(rows)] for k in range(MAX_CRAMERS_V_COLUMNS + 2)}
    columns["t0"][0] = None  # a missing value is in no category
    columns["key"] = [f"id{r}" for r in range(rows)]  # every value unique: not a category
    columns["same"] = ["x"] * rows  # one value: not a category
    profile = profile_parquet(write(tmp_path, columns))
    selection = profile["correlations"]["selection"]["cramers_v"]
    assert (selection["eligible"], selection["columns"], selection["left_out"]) == (12, 10, 2)
    cramers = profile["correlations"]["cramers_v"]
    assert cramers["columns"] == [f"t{k}" for k in range(MAX_CRAMERS_V_COLUMNS)]
    # t1 and t2 group rows in pairs and triples of the same cycle: related, not identical.
    assert 0 < cramers["matrix"][1][2] < 1
    counts = Counter(zip(columns["t0"][1:], columns["t1"][1:]))
    expected = profile_module.cramers_v([(a, b, n) for (a, b), n in counts.items()])
    assert cramers["matrix"][0][1] == pytest.approx(expected)


def test_every_per_column_statistic_survives_batching(tmp_path, monkeypatch):
    path = write(tmp_path, {
        "n": [1, 2, 3, None], "x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.0, 6.0, 8.0],
        "colour": ["red", "red", "blue", None], "ok": [True, False, True, True],
    })
    whole = profile_parquet(path)
    monkeypatch.setattr(profile_module, "COLUMNS_PER_QUERY", 1)
    assert profile_parquet(path) == whole
