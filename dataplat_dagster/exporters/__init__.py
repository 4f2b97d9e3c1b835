"""Exporters: IO managers that write outputs (and datasets) to a connector's database or store."""
