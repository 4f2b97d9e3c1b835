"""The FTP/FTPS server process that `ftp.start_ftp` launches.

    python -m dataplat_dagster_tests.servers.ftp_main CONFIG.json

CONFIG names the root folder, the users as [name, password, perm] and, for explicit
FTPS, the certificate and key. The server binds a free port itself (no window for
another process to take it) and writes the port to CONFIG's `port_file` once it is
listening. It runs until SIGTERM (clean enough: no state to save) or SIGKILL.
"""

import json
import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import ThreadedFTPServer


def main(config_path: str) -> None:
    with open(config_path) as f:
        config = json.load(f)
    # A configured root logger stops pyftpdlib from adding its own chatty one; only
    # warnings and errors reach the log file.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)

    authorizer = DummyAuthorizer()
    for name, password, perm in config["users"]:
        authorizer.add_user(name, password, config["root"], perm=perm)

    if config.get("certfile"):
        handler = type("Handler", (TLS_FTPHandler,), {
            "certfile": config["certfile"], "keyfile": config["keyfile"],
            "tls_control_required": True, "tls_data_required": True,
        })
    else:
        handler = type("Handler", (FTPHandler,), {})
    handler.authorizer = authorizer

    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    port_file = config["port_file"]
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever(handle_exit=False)


if __name__ == "__main__":
    main(sys.argv[1])
