"""A query's rows as Arrow batches, streamed while the query's connection stays open."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack


class QueryStream:
    """Iterates a query's record batches and owns what the query holds open (its cursor,
    connection and transaction).

    A ``pyarrow.RecordBatchReader`` made ``from_batches`` of a generator cannot do this: its
    ``close()`` does not release the generator, and a generator that never started never runs
    its ``finally``. A reader closed before its first batch (a snapshot refused on its schema)
    then kept its connection idle in a transaction, and the source's locks, for as long as
    anything (an exception's traceback, say) referred to it. ``close()`` here ends the query
    whether or not a batch was read; reading to the end closes it too.
    """

    def __init__(self, schema, batches: Iterator, resources: ExitStack) -> None:
        self.schema = schema
        self._batches = batches
        self._resources = resources

    def __iter__(self) -> Iterator:
        try:
            yield from self._batches
        finally:
            self.close()

    def read_all(self):
        import pyarrow as pa

        return pa.Table.from_batches(list(self), self.schema)

    def close(self) -> None:
        self._resources.close()

    def __enter__(self) -> "QueryStream":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
