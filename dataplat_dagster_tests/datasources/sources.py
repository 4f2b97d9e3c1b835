"""Source data and connectors shared by the datasource tests (the `s3` fixture is in conftest)."""

import io
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq

# A European CSV: ';', decimal commas, thousands dots, day-first dates, Windows-1252.
EU_CSV = "id;amount;day;city\n1;1.234,50;31/12/2024;Köln\n2;7,25;01/01/2025;Sevilla\n3;;02/01/2025;Besançon\n".encode("cp1252")

S3_KEY_ENV, S3_SECRET_ENV = "DS_S3_KEY", "DS_S3_SECRET"


def s3_connector(server) -> dict:
    """A catalog entry for the test S3 server; the `s3` fixture sets its variables."""
    return {"type": "s3", "bucket": server.bucket, "endpoint_url": server.endpoint_url, "region": server.region,
            "access_key_env": S3_KEY_ENV, "secret_key_env": S3_SECRET_ENV}


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2, 3], "city": ["Lyon", "Köln", None]}), buffer)
    return buffer.getvalue()


def pg_connection(server):
    import psycopg2

    return psycopg2.connect(host=server.host, port=server.port, user=server.username, password=server.password, dbname=server.database)
