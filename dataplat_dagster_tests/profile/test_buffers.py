"""Arrow arrays read through their buffers give what pyarrow's own conversions give, at
any offset, and without importing pandas."""

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from dataplat_dagster.profile.buffers import boolean_values, fixed_width_values, floats_with_nan, int64_array, valid_mask


@pytest.mark.parametrize("start, stop", [(0, 19), (3, 19), (9, 10), (5, 5)])
def test_values_and_masks_match_pyarrow_at_any_offset(start, stop):
    flags = pa.array([True, None, False, True, None, True, False, False, True, None] * 2)[start:stop]
    floats = pa.array([1.5, None, -0.0, float("nan"), 7.25, None, 3.0, 2.0, None, 1.0] * 2)[start:stop]
    dates = pa.array(list(range(20)), pa.int32()).cast(pa.date32())[start:stop]
    assert valid_mask(flags).tolist() == flags.is_valid().to_pylist()
    assert boolean_values(flags)[valid_mask(flags)].tolist() == flags.drop_null().to_pylist()
    assert np.array_equal(floats_with_nan(floats), floats.to_numpy(zero_copy_only=False), equal_nan=True)
    assert fixed_width_values(dates).tolist() == dates.cast(pa.int32()).to_pylist()
    assert int64_array(np.array([4, 0, 2], np.int32)).to_pylist() == [4, 0, 2]


def test_the_helpers_do_not_import_pandas():
    code = ("import sys, numpy as np, pyarrow as pa\n"
            "from dataplat_dagster.profile import buffers as b\n"
            "a = pa.Array.from_buffers(pa.float64(), 3, [None, pa.py_buffer(np.arange(3.0))])\n"
            "b.floats_with_nan(a); b.valid_mask(a); a.take(b.int64_array(np.array([2, 0])))\n"
            "print('pandas' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_a_one_pass_profile_does_not_import_pandas(tmp_path):
    code = f"""
import sys
import pyarrow.csv as csv, pyarrow.parquet as pq
from dataplat_dagster.profile.accumulate import ProfileAccumulator
path = {str(tmp_path / "t.csv")!r}
open(path, "w").write("n,x,flag,city,day\\n1,1.5,true,Köln,2024-01-02\\n2,,false,Ulm,\\n2,-3.25,,Köln,2024-03-04\\n")
table = csv.read_csv(path)
pq.write_table(table, path + ".parquet")
profile = ProfileAccumulator.for_schema(table.schema)
for i, batch in enumerate(table.to_batches(max_chunksize=2)):
    profile.add(profile.summarize(batch, (i,)))
result = profile.finish(path + ".parquet")
city = result["columns"][3]
print(result["summary"]["rows"], result["summary"]["missing_cells"], city["distinct"], city["top_values"][0]["value"],
      "pandas" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "3", "2", "Köln", "False"]
