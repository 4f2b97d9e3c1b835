"""The table types outputs may have, one handler per type, in the style of Dagster's ``DbTypeHandler``:
each turns its type into an Arrow stream to write, and an Arrow table read back into its
type. pandas is imported only when a DataFrame is handled."""

from __future__ import annotations

from abc import ABC, abstractmethod


class ExportTypeHandler(ABC):
    name: str

    @abstractmethod
    def handles(self, obj) -> bool:
        """Whether ``obj`` is of this handler's type."""

    @abstractmethod
    def handles_type(self, typing_type) -> bool:
        """Whether an input annotated ``typing_type`` wants this handler's type."""

    @abstractmethod
    def to_arrow(self, obj):
        """``obj`` as a ``pyarrow.RecordBatchReader``."""

    @abstractmethod
    def from_arrow(self, table):
        """A ``pyarrow.Table`` read back, as this handler's type."""


class ArrowTypeHandler(ExportTypeHandler):
    name = "pyarrow.Table / RecordBatchReader"

    def handles(self, obj) -> bool:
        import pyarrow as pa

        return isinstance(obj, (pa.Table, pa.RecordBatchReader))

    def handles_type(self, typing_type) -> bool:
        import pyarrow as pa

        return typing_type is pa.Table

    def to_arrow(self, obj):
        import pyarrow as pa

        if isinstance(obj, pa.RecordBatchReader):
            return obj
        return pa.RecordBatchReader.from_batches(obj.schema, obj.to_batches(max_chunksize=64 * 1024))

    def from_arrow(self, table):
        return table


class PandasTypeHandler(ExportTypeHandler):
    name = "pandas.DataFrame"

    def handles(self, obj) -> bool:
        module = type(obj).__module__
        if not module.startswith("pandas"):
            return False
        import pandas as pd

        return isinstance(obj, pd.DataFrame)

    def handles_type(self, typing_type) -> bool:
        return getattr(typing_type, "__name__", None) == "DataFrame" and getattr(typing_type, "__module__", "").startswith("pandas")

    def to_arrow(self, obj):
        import pyarrow as pa

        # The index is the frame's, not the data's (a RangeIndex after a filter, mostly).
        table = pa.Table.from_pandas(obj, preserve_index=False)
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=64 * 1024))

    def from_arrow(self, table):
        return table.to_pandas()


TYPE_HANDLERS: tuple[ExportTypeHandler, ...] = (ArrowTypeHandler(), PandasTypeHandler())
