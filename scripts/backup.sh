#!/usr/bin/env bash
# Back up and restore the PostgreSQL database (pg_dump custom format).
#
#   scripts/backup.sh [backup]       dump to $BACKUP_DIR/pomogator-<UTC time>.dump, then
#                                    delete dumps older than $BACKUP_KEEP_DAYS days
#   scripts/backup.sh restore FILE   restore FILE into an empty database (one with tables
#                                    is refused: nothing is overwritten)
#   scripts/backup.sh list           the dumps in $BACKUP_DIR, oldest first
#
# Where the database is:
#   BACKUP_DATABASE_URL set (postgresql://user:password@host:port/db): this machine's client
#     tools talk to it ($PG_BIN/pg_dump, or pg_dump on PATH; their major version must be at
#     least the server's). RESTORE_DATABASE_URL, if set, is where `restore` goes instead.
#   otherwise: the Compose `postgres` service, with its own tools through `docker compose
#     exec` (same version as the server), as POSTGRES_USER into POSTGRES_DB.
# Settings come from the environment, else from .env, else the defaults: BACKUP_DIR=./backups,
# BACKUP_KEEP_DAYS=14 (0 keeps everything).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# A setting from the environment, else from .env (the last KEY=value line), else $2.
setting() {
    local value="${!1:-}"
    if [ -z "$value" ] && [ -f .env ]; then
        value="$(sed -n "s/^$1=//p" .env | tail -n 1)"
        value="${value%\"}"
        value="${value#\"}"
    fi
    printf '%s' "${value:-$2}"
}

die() {
    echo "backup: $*" >&2
    exit 1
}

backup_dir="$(setting BACKUP_DIR ./backups)"
keep_days="$(setting BACKUP_KEEP_DAYS 14)"
database_url="$(setting BACKUP_DATABASE_URL "")"
restore_url="$(setting RESTORE_DATABASE_URL "$database_url")"
pg_bin="$(setting PG_BIN "")"
# SQLAlchemy's spelling (DATABASE_URL of the services) is accepted too.
database_url="${database_url/postgresql+asyncpg:/postgresql:}"
restore_url="${restore_url/postgresql+asyncpg:/postgresql:}"
case "$keep_days" in '' | *[!0-9]*) die "BACKUP_KEEP_DAYS must be a number of days" ;; esac

tool() {
    printf '%s' "${pg_bin:+$pg_bin/}$1"
}

compose_cmd=()
compose() {
    if [ "${#compose_cmd[@]}" -eq 0 ]; then
        if "${DOCKER:-docker}" compose version >/dev/null 2>&1; then
            compose_cmd=("${DOCKER:-docker}" compose)
        elif command -v docker-compose >/dev/null 2>&1; then
            compose_cmd=(docker-compose)
        else
            die "neither 'docker compose' nor docker-compose found (or set BACKUP_DATABASE_URL)"
        fi
    fi
    "${compose_cmd[@]}" "$@"
}

# pg_dump / pg_restore / psql with the connection added: locally, or inside the container.
# $1: local | compose, $2: URL (local), $3: the tool, then its arguments.
run_pg() {
    local where="$1" url="$2" name="$3"
    shift 3
    if [ "$where" = local ]; then
        "$(tool "$name")" --dbname="$url" "$@"
    else
        # shellcheck disable=SC2016 # expanded by the container's shell, from its environment
        compose exec -T postgres sh -c \
            "exec $name --username=\"\$POSTGRES_USER\" --dbname=\"\$POSTGRES_DB\" \"\$@\"" \
            "$name" "$@"
    fi
}

# pg_restore --list of a file (a dump that cannot be listed is not kept, nor restored).
# $1: local | compose, $2: the file.
check_dump() {
    local where="$1" file="$2"
    if [ "$where" = local ]; then
        "$(tool pg_restore)" --list "$file" >/dev/null
    else
        compose exec -T postgres pg_restore --list <"$file" >/dev/null
    fi
}

partial=""
do_backup() {
    local where=compose stamp file
    [ -z "$database_url" ] || where=local
    mkdir -p "$backup_dir"
    umask 077
    stamp="$(date -u +%Y%m%dT%H%M%SZ)"
    file="$backup_dir/pomogator-$stamp.dump"
    local n=1
    while [ -e "$file" ]; do
        n=$((n + 1))
        file="$backup_dir/pomogator-$stamp-$n.dump"
    done
    partial="$file.partial"
    trap 'rm -f "$partial"' EXIT # a failed dump leaves nothing behind
    if [ "$where" = local ]; then
        run_pg local "$database_url" pg_dump --format=custom --compress=6 --file="$partial"
    else
        run_pg compose "" pg_dump --format=custom --compress=6 >"$partial"
    fi
    [ -s "$partial" ] || die "pg_dump wrote nothing"
    check_dump "$where" "$partial" || die "the dump cannot be read back; kept nothing"
    mv "$partial" "$file"
    trap - EXIT
    echo "backup: wrote $file ($(wc -c <"$file") bytes)"
    if [ "$keep_days" -gt 0 ]; then
        find "$backup_dir" -maxdepth 1 -type f -name 'pomogator-*.dump' -mtime +"$keep_days" \
            -print -delete | sed 's/^/backup: removed (older than '"$keep_days"' days) /'
    fi
}

do_restore() {
    local file="${1:-}" where=compose tables
    [ -n "$file" ] || die "usage: scripts/backup.sh restore FILE"
    [ -f "$file" ] && [ -r "$file" ] || die "no readable dump at $file"
    [ -z "$restore_url" ] || where=local
    check_dump "$where" "$file" || die "$file is not a pg_dump custom-format archive"
    tables="$(run_pg "$where" "$restore_url" psql --no-psqlrc --tuples-only --no-align \
        --command="SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                     AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                     AND n.nspname NOT LIKE 'pg_toast%'" </dev/null)" ||
        die "cannot reach the database to restore into"
    [ "$tables" = 0 ] || die "the target database is not empty ($tables relations); restore \
into an empty one (README: Backup and restore)"
    # One transaction: a restore that fails half-way leaves the database empty, not half full.
    if [ "$where" = local ]; then
        run_pg local "$restore_url" pg_restore --no-owner --no-privileges --exit-on-error \
            --single-transaction "$file"
    else
        run_pg compose "" pg_restore --no-owner --no-privileges --exit-on-error \
            --single-transaction <"$file"
    fi
    echo "backup: restored $file"
}

case "${1:-backup}" in
    backup) do_backup ;;
    restore) do_restore "${2:-}" ;;
    list) find "$backup_dir" -maxdepth 1 -type f -name 'pomogator-*.dump' 2>/dev/null | sort ;;
    -h | --help | help) sed -n '2,19s/^# \{0,1\}//p' "$0" ;;
    *) die "unknown command $1 (backup, restore FILE, list)" ;;
esac
