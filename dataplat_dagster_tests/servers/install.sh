#!/usr/bin/env bash
# Installs the Debian servers the tests start on loopback (MariaDB, OpenSSH's sshd), and the
# Chromium that the embeddings explorer's browser test drives through Playwright, where
# they are missing. PostgreSQL's server binaries come with the machine image; the Python
# servers (FTP, S3, GCS) come with the package's `test` extra. Needs root for apt-get; as
# another user it only says what is missing, and the tests that need it will fail loudly.
set -euo pipefail

missing=()
[ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-liberation)
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "The tests need ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root." >&2
    exit 1
fi
echo "Installing ${missing[*]} for the test servers ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
