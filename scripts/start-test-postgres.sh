#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 for the tests and print its URL.
# Usage: eval "$(scripts/start-test-postgres.sh)"   (sets WIZARD_TEST_DATABASE_URL)
# Runs the server as the postgres user (needed when called as root), data in
# a temporary folder, fsync off: a test database, not a real one.
set -euo pipefail
# A free port unless one is asked for (another server may hold the usual one).
PORT="${WIZARD_TEST_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
DATA="$(mktemp -d /tmp/wizard-pg.XXXXXX)"
as_postgres=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$DATA"
  as_postgres=(runuser -u postgres --)
fi
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -n "$bindir" ] || { echo "PostgreSQL is not installed (apt-get install -y postgresql)" >&2; exit 1; }
"${as_postgres[@]}" "$bindir/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >/dev/null
"${as_postgres[@]}" "$bindir/pg_ctl" -D "$DATA" -w -l "$DATA/server.log" \
  -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c unix_socket_directories=$DATA -c max_connections=200" \
  start >/dev/null
"${as_postgres[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$PORT" -U postgres wizard_test
echo "export WIZARD_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/wizard_test"
echo "export WIZARD_TEST_PG_DATA=$DATA"
