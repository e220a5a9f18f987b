#!/usr/bin/env bash
# Deploy (or upgrade) the Compose stack on this host without dropping an answer in flight,
# rolling back to the previous images on failure.
#
#   scripts/deploy.sh [build]    build the images from this checkout (the default)
#   scripts/deploy.sh pull       pull <IMAGE_PREFIX>-backend/-bot:<IMAGE_TAG> from a registry
#   scripts/deploy.sh rollback   put back the images that ran before the last deploy
#
# Steps: keep the running images as <image>:rollback; build or pull; back up the database
# (DEPLOY_BACKUP=1, when PostgreSQL already runs); start postgres and redis; run `migrate`;
# replace the backend's containers, then the bot's, one at a time: start one more on the new
# image, wait until it is healthy (DEPLOY_HEALTH_TIMEOUT_S), then stop an old one (SIGTERM and
# its stop_grace_period to finish its answers), ending with BACKEND_REPLICAS and BOT_REPLICAS
# containers; last, recreate nginx. A new container that is not healthy is removed while the
# old ones still serve; then, as after a failed migration, the previous images are tagged back
# and rolled in the same way wherever a container runs the new ones. Migrations are not
# undone: they are written to be compatible with the previous release, and the backup taken
# here is the way back for the data.
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
poll_s="$(setting DEPLOY_POLL_S 1)"
take_backup="$(setting DEPLOY_BACKUP 1)"
# The services whose containers run our images, in the order they are rolled (the bot calls
# the backend), their replica counts, and what is recreated after them.
app_services=(backend bot)
declare -A replicas=(
    [backend]="$(setting BACKEND_REPLICAS 1)"
    [bot]="$(setting BOT_REPLICAS 1)"
)
front_services=(nginx)
images=("$prefix-backend" "$prefix-bot")
image_of() { printf '%s' "$prefix-$1:$tag"; }

check_replicas() {
    local service
    for service in "${app_services[@]}"; do
        [[ "${replicas[$service]}" =~ ^[1-9][0-9]*$ ]] ||
            die "${service^^}_REPLICAS must be a whole number from 1, not '${replicas[$service]}'"
    done
}

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

# Every container of a service, running or not, one id a line.
containers() { compose ps -a -q "$1"; }

# What `docker inspect` says of a container's health: its healthcheck's verdict, else its state.
health_format='{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}'

# Until each container (by id) reports healthy, or running when it has no healthcheck.
wait_healthy() {
    local deadline=$((SECONDS + health_timeout)) id name state pending
    local -A seen
    while :; do
        seen=()
        while read -r id name state; do
            seen[$id]="$name $state"
        done < <("$docker_cmd" inspect --format "{{.Id}} {{.Name}} $health_format" "$@" \
            2>/dev/null || true)
        pending=()
        for id in "$@"; do
            read -r name state <<<"${seen[$id]:-${id:0:12} gone}"
            case "$state" in
                healthy | running) ;;
                starting | created | restarting) pending+=("${name#/}:$state") ;;
                *) log "${name#/} is $state"; return 1 ;;
            esac
        done
        [ "${#pending[@]}" -gt 0 ] || return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "not healthy after ${health_timeout}s: ${pending[*]}"
            return 1
        fi
        sleep "$poll_s"
    done
}

# Until the containers of these services (one each: postgres, redis, nginx) are healthy.
wait_services() {
    local service ids=() found
    for service in "$@"; do
        found="$(compose ps -q "$service")"
        [ -n "$found" ] || { log "$service has no running container"; return 1; }
        mapfile -t -O "${#ids[@]}" ids <<<"$found"
    done
    wait_healthy "${ids[@]}"
}

# Stop a container as `docker compose stop` would, SIGTERM and then the stop_grace_period that
# Compose gave it from docker-compose.yml (backend 40 s, bot 35 s) to finish the answers in
# flight, and remove it.
#   retire ID [NAME GRACE]     NAME and GRACE (seconds) when known, else inspected
retire() {
    local id="$1" name="${2:-}" grace="${3:-}"
    if [ -z "$name" ]; then
        read -r name grace < <("$docker_cmd" inspect --format \
            '{{.Name}} {{.Config.StopTimeout}}' "$id") || return 1
    fi
    # No stop_grace_period: Docker's default.
    [[ "$grace" =~ ^[0-9]+$ ]] || grace=10
    log "stopping ${name#/} (SIGTERM, up to ${grace}s to finish)"
    # -t: `--time` in older Docker CLIs, `--timeout` (with `--time` deprecated) in newer ones.
    "$docker_cmd" stop -t "$grace" "$id" >/dev/null && "$docker_cmd" rm "$id" >/dev/null
}

# Let Compose bring `service` to $2 containers, leaving the ones it has alone, and wait until
# the new ones are healthy. If they are not, they are shown, removed, and 1 is returned.
grow() {
    local service="$1" count="$2" id ok=1 expected
    local -a before=() started=()
    mapfile -t before < <(containers "$service")
    expected=$((count - ${#before[@]}))
    compose up -d --no-deps --no-build --no-recreate --scale "$service=$count" "$service" || ok=0
    for id in $(containers "$service"); do
        [[ " ${before[*]} " == *" $id "* ]] || started+=("$id")
    done
    if [ "$ok" -eq 1 ] && [ "${#started[@]}" -lt "$expected" ]; then
        log "$service: Compose started ${#started[@]} new container(s), not $expected"
        ok=0
    fi
    if [ "$ok" -eq 1 ] && [ "${#started[@]}" -gt 0 ]; then
        wait_healthy "${started[@]}" || ok=0
    fi
    [ "$ok" -eq 0 ] || return 0
    for id in "${started[@]}"; do
        "$docker_cmd" logs --tail 30 "$id" >&2 || true
        retire "$id" || log "could not remove $id"
    done
    return 1
}

# Replace the containers of `service` one at a time and leave $2 of them: surplus ones are
# stopped first, then each remaining one makes way for a new container once that one is
# healthy, then Compose adds what is missing.
#   roll SERVICE COUNT all     every container is replaced (a deploy: new images, new .env)
#   roll SERVICE COUNT image   only those not running <image>:<tag> (a rollback), keeping the
#                              number that runs (COUNT when none does)
roll() {
    local service="$1" want="$2" mode="$3" target="" id status image_id name grace n
    local -a ids=() stale=() fresh=()
    local -A about=()
    mapfile -t ids < <(containers "$service")
    if [ "$mode" = image ]; then
        target="$("$docker_cmd" image inspect --format '{{.Id}}' "$(image_of "$service")")"
    fi
    if [ "${#ids[@]}" -gt 0 ]; then
        while read -r id status image_id name grace; do
            about[$id]="$name $grace"
            case "$status" in
                # Serves nothing, and Compose would start it again rather than a new one.
                exited | created | dead) "$docker_cmd" rm "$id" >/dev/null || return 1 ;;
                *) if [ "$mode" = all ] || [ "$image_id" != "$target" ]; then
                    stale+=("$id")
                else
                    fresh+=("$id")
                fi ;;
            esac
        done < <("$docker_cmd" inspect --format \
            '{{.Id}} {{.State.Status}} {{.Image}} {{.Name}} {{.Config.StopTimeout}}' "${ids[@]}")
    fi
    n=$((${#stale[@]} + ${#fresh[@]}))
    [ "$mode" = all ] || [ "$n" -eq 0 ] || want="$n"
    # Surplus: the stale ones first, so fewer are left to replace.
    while [ "$n" -gt "$want" ]; do
        if [ "${#stale[@]}" -gt 0 ]; then
            id="${stale[-1]}"
            unset 'stale[-1]'
        else
            id="${fresh[-1]}"
            unset 'fresh[-1]'
        fi
        read -r name grace <<<"${about[$id]}"
        retire "$id" "$name" "$grace" || return 1
        n=$((n - 1))
    done
    for id in "${stale[@]}"; do
        grow "$service" $((n + 1)) || return 1
        read -r name grace <<<"${about[$id]}"
        retire "$id" "$name" "$grace" || return 1
    done
    grow "$service" "$want" || return 1
    mapfile -t ids < <(containers "$service")
    [ "${#ids[@]}" -eq "$want" ] || {
        log "$service has ${#ids[@]} containers, not $want"
        return 1
    }
    wait_healthy "${ids[@]}"
}

# 0: the previous release runs again; 1: there was none; 2: going back failed too.
restore_previous() {
    local image service restored=0
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
    # The reverse order of a deploy: the bot never runs a newer release than the backend.
    for service in bot backend; do
        roll "$service" "${replicas[$service]}" image || return 2
    done
    compose up -d --no-deps --no-build "${front_services[@]}" || return 2
    wait_services "${front_services[@]}" || return 2
}

fail() {
    local status=0
    log "$1; rolling back"
    compose logs --no-color --tail=50 "${app_services[@]}" >&2 || true
    restore_previous || status=$?
    case "$status" in
        0) die "deploy failed; the previous release runs again" ;;
        1) die "deploy failed and there was nothing to roll back to" ;;
        *) die "deploy failed, and so did the rollback: see docker compose ps" ;;
    esac
}

deploy() {
    local source="$1" service
    [ -f .env ] || die "no .env here: copy .env.example to .env and fill it in (README)"
    [ -f nginx/ssl/fullchain.pem ] && [ -f nginx/ssl/privkey.pem ] ||
        die "no certificate in nginx/ssl/ (README: Certificates)"
    check_replicas
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
    wait_services postgres redis || die "postgres or redis did not become healthy"
    log "migrating"
    compose run --rm --no-deps migrate || fail "the migration failed"
    for service in "${app_services[@]}"; do
        log "rolling $service to ${replicas[$service]} new container(s), one at a time"
        roll "$service" "${replicas[$service]}" all ||
            fail "$service did not become healthy on the new release"
    done
    # Recreated, so that it renders its templates again (they may have changed).
    compose up -d --no-deps --no-build --force-recreate "${front_services[@]}" ||
        fail "nginx did not start"
    wait_services "${front_services[@]}" || fail "nginx is not running"
    log "done: $(compose ps --format '{{.Service}} {{.Status}}' 2>/dev/null | tr '\n' ';')"
}

rollback() {
    local status=0
    check_replicas
    restore_previous || status=$?
    case "$status" in
        0) log "the previous release runs again" ;;
        1) die "nothing to roll back to" ;;
        *) die "the rollback failed: see docker compose ps" ;;
    esac
}

case "${1:-build}" in
    build | pull) find_compose && deploy "${1:-build}" ;;
    rollback) find_compose && rollback ;;
    -h | --help | help) sed -n '2,18s/^# \{0,1\}//p' "$0" ;;
    *) die "unknown command $1 (build, pull, rollback)" ;;
esac
