"""Datasources: what to read through a connector (a table, a query, or a file's path), and
the "test datasource" probe that shows its schema, size and first rows without importing."""
