"""Each server does a real round trip with its bare client, and refuses what it should.

These pin down what the connector tests rely on: the handle's fields are right, wrong
credentials and missing permissions fail, and kill() cuts open connections.
"""

import ftplib
import io
import ssl
import subprocess

import boto3
import paramiko
import psycopg2
import pymysql
import pytest
from botocore.exceptions import ClientError
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from dataplat_dagster_tests.servers.postgres import start_postgres
from dataplat_dagster_tests.servers.sftp import start_sftp


def test_postgres_round_trip_and_refusals(postgres_server):
    s = postgres_server
    with psycopg2.connect(host=s.host, port=s.port, user=s.username, password=s.password, dbname=s.database) as conn:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE round_trip (id int, name text)")
            cur.execute("INSERT INTO round_trip VALUES (1, 'ä'), (2, 'b')")
            cur.execute("SELECT name FROM round_trip ORDER BY id")
            assert cur.fetchall() == [("ä",), ("b",)]
            cur.execute("SELECT secret FROM private.secrets")
            assert cur.fetchone() == ("only the owner reads this",)
    conn.close()

    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host=s.host, port=s.port, user=s.username, password="wrong", dbname=s.database)
    noperm = psycopg2.connect(host=s.host, port=s.port, user=s.noperm_username, password=s.noperm_password,
                              dbname=s.database)
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied for schema private"):
        noperm.cursor().execute("SELECT * FROM private.secrets")
    noperm.close()

    version = subprocess.run([s.psql, "--version"], capture_output=True, text=True, check=True).stdout
    assert "15." in version


def test_mariadb_round_trip_and_refusals(mariadb_server):
    s = mariadb_server
    conn = pymysql.connect(host=s.host, port=s.port, user=s.username, password=s.password, database=s.database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE round_trip (id int, name varchar(10)) CHARACTER SET utf8mb4")
        cur.execute("INSERT INTO round_trip VALUES (1, 'ä'), (2, 'b')")
        conn.commit()
        cur.execute("SELECT name FROM round_trip ORDER BY id")
        assert cur.fetchall() == (("ä",), ("b",))
    conn.close()

    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(host=s.host, port=s.port, user=s.username, password="wrong", database=s.database)
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(host=s.host, port=s.port, user=s.noperm_username, password=s.noperm_password,
                        database=s.database)


@pytest.mark.parametrize("fixture", ["ftp_server", "ftps_server"])
def test_ftp_round_trip_and_readonly_user(fixture, request):
    s = request.getfixturevalue(fixture)

    def login(user, password):
        if s.tls:
            ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=str(s.cafile)))
        else:
            ftp = ftplib.FTP()
        ftp.connect(s.host, s.port, timeout=10)
        ftp.login(user, password)
        if s.tls:
            ftp.prot_p()
        return ftp

    (s.root / "incoming").mkdir(exist_ok=True)
    (s.root / "incoming" / "from-server.txt").write_bytes(b"server side")
    ftp = login(s.username, s.password)
    data = io.BytesIO()
    ftp.retrbinary("RETR /incoming/from-server.txt", data.write)
    assert data.getvalue() == b"server side"
    ftp.storbinary("STOR /incoming/from-client.txt", io.BytesIO(b"client side"))
    assert (s.root / "incoming" / "from-client.txt").read_bytes() == b"client side"
    assert sorted(ftp.nlst("/incoming")) == ["from-client.txt", "from-server.txt"]
    ftp.quit()

    readonly = login(s.readonly_username, s.readonly_password)
    assert "from-server.txt" in readonly.nlst("/incoming")
    with pytest.raises(ftplib.error_perm, match="550"):
        readonly.storbinary("STOR /incoming/refused.txt", io.BytesIO(b"x"))
    readonly.quit()
    assert s.tls == (fixture == "ftps_server") and (s.cafile is not None) == s.tls


def _sftp_client(s, known_hosts, **auth) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(s.host, s.port, username=s.username, look_for_keys=False, allow_agent=False, timeout=10, **auth)
    return client


def test_sftp_round_trip_keys_and_refusals(sftp_server):
    s = sftp_server
    (s.home / "from-server.txt").write_bytes(b"server side")
    with _sftp_client(s, s.known_hosts, password=s.password) as client:
        sftp = client.open_sftp()
        assert sftp.open("from-server.txt").read() == b"server side"
        sftp.putfo(io.BytesIO(b"client side"), "from-client.txt")
        assert (s.home / "from-client.txt").read_bytes() == b"client side"
        with pytest.raises(PermissionError):
            sftp.listdir(s.locked_dir)

    key = paramiko.PKey.from_path(s.private_key)
    encrypted_key = paramiko.PKey.from_path(s.encrypted_private_key, s.key_passphrase.encode())
    for pkey in (key, encrypted_key):
        with _sftp_client(s, s.known_hosts, pkey=pkey) as client:
            assert "from-client.txt" in client.open_sftp().listdir(".")

    with pytest.raises(paramiko.BadHostKeyException):
        _sftp_client(s, s.wrong_known_hosts, password=s.password)
    with pytest.raises(paramiko.AuthenticationException):
        _sftp_client(s, s.known_hosts, password="wrong")
    printed = subprocess.run(["ssh-keygen", "-lf", str(s.known_hosts)], capture_output=True, text=True, check=True)
    assert printed.stdout.split()[1] == s.host_key_fingerprint


def test_s3_round_trip_and_refusals(s3_server):
    s = s3_server
    s.reset()  # the session's server: other tests in this worker may have left objects

    def client(access_key, secret_key):
        return boto3.client("s3", endpoint_url=s.endpoint_url, region_name=s.region,
                            aws_access_key_id=access_key, aws_secret_access_key=secret_key)

    s3 = client(s.access_key, s.secret_key)
    s3.put_object(Bucket=s.bucket, Key="dir/round-trip.txt", Body=b"client side")
    assert s3.get_object(Bucket=s.bucket, Key="dir/round-trip.txt")["Body"].read() == b"client side"

    assert s.auth_enforced
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        client(s.access_key, "wrong-secret").get_object(Bucket=s.bucket, Key="dir/round-trip.txt")
    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        client("AKIAWRONGWRONGWRONG1", s.secret_key).list_objects_v2(Bucket=s.bucket)

    readonly = client(s.readonly_access_key, s.readonly_secret_key)
    assert [o["Key"] for o in readonly.list_objects_v2(Bucket=s.bucket)["Contents"]] == ["dir/round-trip.txt"]
    assert readonly.get_object(Bucket=s.bucket, Key="dir/round-trip.txt")["Body"].read() == b"client side"
    with pytest.raises(ClientError, match="AccessDenied"):
        readonly.put_object(Bucket=s.bucket, Key="refused.txt", Body=b"x")

    s3.create_bucket(Bucket="dataplat-other")
    s.reset()
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [s.bucket]
    assert s3.list_objects_v2(Bucket=s.bucket)["KeyCount"] == 0


def test_gcs_round_trip(gcs_server):
    s = gcs_server
    client = storage.Client(project=s.project, credentials=AnonymousCredentials(),
                            client_options=ClientOptions(api_endpoint=s.endpoint_url))
    bucket = client.bucket(s.bucket)
    bucket.blob("dir/round-trip.txt").upload_from_string(b"client side")
    assert bucket.blob("dir/round-trip.txt").download_as_bytes() == b"client side"
    assert [b.name for b in client.list_blobs(s.bucket, prefix="dir/")] == ["dir/round-trip.txt"]


def test_kill_cuts_open_postgres_connections(tmp_path):
    with start_postgres(tmp_path) as s:
        conn = psycopg2.connect(host=s.host, port=s.port, user=s.username, password=s.password, dbname=s.database)
        s.kill()
        with pytest.raises(psycopg2.OperationalError):
            conn.cursor().execute("SELECT 1")


def test_kill_cuts_open_sftp_sessions(tmp_path):
    with start_sftp(tmp_path) as s:
        client = _sftp_client(s, s.known_hosts, password=s.password)
        sftp = client.open_sftp()
        s.kill()
        with pytest.raises((OSError, EOFError, paramiko.SSHException)):
            sftp.listdir(".")
        client.close()
