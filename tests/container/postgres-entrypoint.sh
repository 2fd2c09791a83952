#!/bin/sh
# The official postgres image's entrypoint, in the part deploy/compose.yaml uses: on an
# empty PGDATA, initdb with POSTGRES_USER (superuser) and POSTGRES_PASSWORD, then
# create POSTGRES_DB; then `postgres -c …` runs the server with those settings.
set -eu
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
shift
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is empty: set it (deploy/.env)}"
    user=${POSTGRES_USER:-postgres}
    database=${POSTGRES_DB:-$user}
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    # A private start on a socket in /tmp (no TCP) to create the database, as the official image does.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
    if [ "$database" != postgres ]; then
        psql -v ON_ERROR_STOP=1 -h /tmp -U "$user" -d postgres -q -c "CREATE DATABASE \"$database\""
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "initialized $PGDATA: user $user, database $database"
fi
exec postgres -D "$PGDATA" "$@"
