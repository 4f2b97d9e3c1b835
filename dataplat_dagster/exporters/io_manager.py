"""Exporters as IO managers: an output whose ``io_manager_key`` is an exporter's name is
written to its table or file, in its mode; an input loaded from it reads the target back.

The output's metadata has ``dagster/row_count``, ``dagster/relation_identifier`` and
``dagster/table_name`` (tables) or ``dagster/uri`` (files), the mode, and the name written.
"""

from __future__ import annotations

from typing import Optional

from dagster import ConfigurableIOManager, Failure, InputContext, MetadataValue, OutputContext
from pydantic import Field

from dataplat_dagster.connectors.base import ConnectorResource
from dataplat_dagster.errors import DataplatError
from dataplat_dagster.exporters.models import ExporterSpec
from dataplat_dagster.type_handlers import TYPE_HANDLERS


class ExporterIOManager(ConfigurableIOManager):
    """Writes outputs to an exporter's target through its connector."""

    exporter_name: str = Field(description="The exporter's name in the catalog.")
    connector: ConnectorResource = Field(description="The connector resource it writes through.")
    uri_prefix: str = Field("", description="Files: the URI of the store's root, for the URIs of written files.")
    mode: str = Field(description="overwrite or timestamped.")
    database: Optional[str] = None
    table: Optional[str] = None
    path: Optional[str] = None
    format: Optional[str] = None
    retention: Optional[int] = None
    on_dependents: str = "refuse"

    @classmethod
    def from_spec(cls, name: str, spec: ExporterSpec, connector: ConnectorResource, uri_prefix: str = "") -> "ExporterIOManager":
        return cls(exporter_name=name, connector=connector, uri_prefix=uri_prefix, **spec.model_dump(include={"mode", "database", "table", "path", "format", "retention", "on_dependents"}))

    @property
    def spec(self) -> ExporterSpec:
        return ExporterSpec(connector=self.connector.connector_name, mode=self.mode, database=self.database, table=self.table,
                            path=self.path, format=self.format, retention=self.retention, on_dependents=self.on_dependents)

    def handle_output(self, context: OutputContext, obj) -> None:
        handler = next((h for h in TYPE_HANDLERS if h.handles(obj)), None)
        if handler is None:
            kinds = ", ".join(h.name for h in TYPE_HANDLERS)
            raise Failure(
                description=f"Exporter {self.exporter_name!r} cannot write a {type(obj).__name__}: return one of {kinds}.",
                allow_retries=False,
            )
        context.add_output_metadata(self.export(handler.to_arrow(obj), context.log))

    def export(self, reader, log) -> dict:
        """Write ``reader`` to the target; returns the metadata describing what was written."""
        from dataplat_dagster.exporters.file_target import write_file
        from dataplat_dagster.exporters.sql_target import write_table

        spec = self.spec
        try:
            if spec.table:
                written = write_table(self.connector, spec, reader)
            else:
                written = write_file(self.connector, spec, reader, uri_prefix=self.uri_prefix)
        except DataplatError as error:
            raise Failure(description=f"Exporter {self.exporter_name!r}: {error}", allow_retries=False) from None
        if written.dropped_views:
            log.warning(f"Exporter {self.exporter_name!r} (on_dependents: drop) dropped the views that depended on the old table: "
                        f"{', '.join(written.dropped_views)}.")
        log.info(f"Exporter {self.exporter_name!r} ({spec.mode}) wrote {written.rows:,} rows to {written.identifier}.")
        for name in written.dropped:
            log.info(f"Exporter {self.exporter_name!r}: retention {spec.retention} dropped {name}.")
        metadata = {
            "dagster/row_count": MetadataValue.int(written.rows),
            "export_mode": MetadataValue.text(spec.mode),
            "exporter": MetadataValue.text(self.exporter_name),
            "exported_to": MetadataValue.text(written.name),
        }
        if spec.table:
            metadata["dagster/relation_identifier"] = MetadataValue.text(written.identifier)
            metadata["dagster/table_name"] = MetadataValue.text(written.identifier)
        else:
            metadata["dagster/uri"] = MetadataValue.text(written.identifier)
        if written.dropped_views:
            metadata["dropped_views"] = MetadataValue.json(written.dropped_views)
        if written.dropped:
            metadata["dropped_by_retention"] = MetadataValue.json(written.dropped)
        return metadata

    def load_input(self, context: InputContext):
        """A ``pyarrow.Table``, or a DataFrame for an input annotated so."""
        wanted = context.dagster_type.typing_type
        handler = next((h for h in TYPE_HANDLERS if h.handles_type(wanted)), TYPE_HANDLERS[0])
        return handler.from_arrow(self.read_back())

    def read_back(self):
        """The target's current content (the newest timestamped one), as a ``pyarrow.Table``."""
        from dataplat_dagster.exporters.reading import read_target

        try:
            return read_target(self.connector, self.spec)
        except DataplatError as error:
            raise Failure(description=f"Exporter {self.exporter_name!r}: {error}", allow_retries=False) from None
