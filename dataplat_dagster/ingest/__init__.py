"""Ingest: open a flat file (plain, gzip, zip), detect how it is written, and stream it into Parquet."""
