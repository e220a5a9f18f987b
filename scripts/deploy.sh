#!/usr/bin/env bash
# Deploy (or upgrade) the Compose stack on this host, rolling the images back on failure.
#
#   scripts/deploy.sh [build]    build the images from this checkout (the default)
#   scripts/deploy.sh pull       pull <IMAGE_PREFIX>-backend/-bot:<IMAGE_TAG> from a registry
#   scripts/deploy.sh rollback   put back the images that ran before the last deploy
#
# Steps: keep the running images as <image>:rollback; build or pull; back up the database
# (DEPLOY_BACKUP=1, when PostgreSQL already runs); start postgres and redis; run `migrate`;
# recreate backend, bot and nginx and wait until each is healthy (DEPLOY_HEALTH_TIMEOUT_S).
# If the migration or a health wait fails, the previous images are tagged back and
# restarted. Migrations are not undone: they are written to be compatible with the previous
# release, and the backup taken here is the way back for the data.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

log() { echo "deploy: $*" >&2; }
die() {
    log "$*"
    exit 1
}

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

docker_cmd="${DOCKER:-docker}"
compose_cmd=()
find_compose() {
    if "$docker_cmd" compose version >/dev/null 2>&1; then
        compose_cmd=("$docker_cmd" compose)
    elif command -v docker-compose >/dev/null 2>&1; then
        compose_cmd=(docker-compose)
    else
        die "neither 'docker compose' nor docker-compose found"
    fi
}
compose() { "${compose_cmd[@]}" "$@"; }

prefix="$(setting IMAGE_PREFIX pomogator)"
tag="$(setting IMAGE_TAG latest)"
health_timeout="$(setting DEPLOY_HEALTH_TIMEOUT_S 180)"
take_backup="$(setting DEPLOY_BACKUP 1)"
images=("$prefix-backend" "$prefix-bot")
# The services whose containers run those images, and what is recreated on a deploy.
app_services=(backend bot)
front_services=(nginx)

image_exists() { "$docker_cmd" image inspect --format '{{.Id}}' "$1" >/dev/null 2>&1; }

# Remember what runs now, so that a failed deploy can go back to it.
keep_current() {
    local image
    for image in "${images[@]}"; do
        if image_exists "$image:$tag"; then
            "$docker_cmd" tag "$image:$tag" "$image:rollback"
            log "kept $image:$tag as $image:rollback"
        fi
    done
}

restore_previous() {
    local image restored=0
    for image in "${images[@]}"; do
        if image_exists "$image:rollback"; then
            "$docker_cmd" tag "$image:rollback" "$image:$tag"
            log "rolled $image:$tag back to the previous image"
            restored=1
        fi
    done
    [ "$restored" -eq 1 ] || {
        log "no previous images to roll back to (first deploy?)"
        return 1
    }
    compose up -d --no-deps --no-build "${app_services[@]}" "${front_services[@]}"
    wait_healthy "${app_services[@]}"
}

# Until every service's container reports healthy (or is running, without a healthcheck).
wait_healthy() {
    local deadline=$((SECONDS + health_timeout)) service id state pending
    while :; do
        pending=()
        for service in "$@"; do
            id="$(compose ps -q "$service" 2>/dev/null | head -n 1)"
            state=""
            if [ -n "$id" ]; then
                state="$("$docker_cmd" inspect --format \
                    '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' \
                    "$id" 2>/dev/null || true)"
            fi
            case "$state" in
                healthy | running) ;;
                unhealthy | exited | dead) log "$service is $state"; return 1 ;;
                *) pending+=("$service:${state:-missing}") ;;
            esac
        done
        [ "${#pending[@]}" -gt 0 ] || return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "not healthy after ${health_timeout}s: ${pending[*]}"
            return 1
        fi
        sleep 2
    done
}

fail() {
    log "$1; rolling back"
    compose logs --no-color --tail=50 "${app_services[@]}" >&2 || true
    if restore_previous; then
        die "deploy failed; the previous release runs again"
    fi
    die "deploy failed and there was nothing to roll back to"
}

deploy() {
    local source="$1"
    [ -f .env ] || die "no .env here: copy .env.example to .env and fill it in (README)"
    [ -f nginx/ssl/fullchain.pem ] && [ -f nginx/ssl/privkey.pem ] ||
        die "no certificate in nginx/ssl/ (README: Certificates)"
    keep_current
    if [ "$source" = pull ]; then
        log "pulling ${images[*]} ($tag)"
        compose pull backend migrate bot nginx postgres redis
    else
        log "building ${images[*]} ($tag)"
        compose build --pull backend bot
    fi
    if [ "$take_backup" = 1 ] && [ -n "$(compose ps -q --status running postgres 2>/dev/null)" ]
    then
        "$root/scripts/backup.sh" || die "backup failed; nothing was changed"
    fi
    compose up -d --no-build postgres redis
    wait_healthy postgres redis || die "postgres or redis did not become healthy"
    log "migrating"
    compose run --rm --no-deps migrate || fail "the migration failed"
    log "starting ${app_services[*]} ${front_services[*]}"
    compose up -d --no-deps --no-build "${app_services[@]}" ||
        fail "the services did not start"
    wait_healthy "${app_services[@]}" || fail "the new release is not healthy"
    # Recreated, so that it renders its templates again (they may have changed).
    compose up -d --no-deps --no-build --force-recreate "${front_services[@]}" ||
        fail "nginx did not start"
    wait_healthy "${front_services[@]}" || fail "nginx is not running"
    log "done: $(compose ps --format '{{.Service}} {{.Status}}' 2>/dev/null | tr '\n' ';')"
}

case "${1:-build}" in
    build | pull) find_compose && deploy "${1:-build}" ;;
    rollback) find_compose && { restore_previous || die "nothing to roll back to"; } ;;
    -h | --help | help) sed -n '2,15s/^# \{0,1\}//p' "$0" ;;
    *) die "unknown command $1 (build, pull, rollback)" ;;
esac
