"""Real servers on 127.0.0.1 for the connector tests.

The connectors talk to PostgreSQL, MariaDB, FTP/FTPS, SFTP, S3 and GCS; mocks of those
protocols would hide exactly the failures the connectors must handle (refused
passwords, permissions, host keys, signatures, connections cut half-way). So each
`start_<name>(workdir)` starts the real server as a subprocess on a free loopback port
and returns a handle that says how to reach it and can `stop()` it cleanly or `kill()`
it at once. `fixtures.py` wraps them as lazy session-scoped pytest fixtures; every
pytest-xdist worker gets its own servers, ports and directories.
"""
