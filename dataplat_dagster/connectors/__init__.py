"""Connectors: credentials and connection settings for external systems, as Dagster resources.

One module per connector type (``sql``, ``ftp``, ``sftp``, ``s3``, ``gcs``). The four file
stores share one interface (``filestore.FileStore``) so that datasources and exporters are
written once for all of them; SQL connectors expose SQLAlchemy and Arrow bulk paths.
"""
