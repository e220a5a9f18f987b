#!/usr/bin/env bash
# The project's nginx configuration outside Docker: rendered as the nginx image renders it.
#
#   scripts/nginx_local.sh render DIR   nginx.conf + conf.d/ + ssl/ into DIR, ready for
#                                       nginx -p DIR/ -c DIR/nginx.conf -e stderr \
#                                             -g "daemon off; pid DIR/nginx.pid;"
#   scripts/nginx_local.sh test         render into a temporary directory and run `nginx -t`
#
# The templates (nginx/templates/*.template) get envsubst with the variables whose names match
# NGINX_ENVSUBST_FILTER, exactly like the image's entrypoint; unset ones take the defaults
# below (those of docker-compose.yml, with loopback upstreams). Without DIR/ssl/fullchain.pem
# a self-signed certificate for NGINX_SERVER_NAME (or 127.0.0.1) is made by
# scripts/self_signed_cert.sh. Temporary files go to DIR/temp/ instead of /var/lib/nginx.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"

export NGINX_ENVSUBST_FILTER="${NGINX_ENVSUBST_FILTER:-^(NGINX_|WEBHOOK_PATH$)}"
export NGINX_SERVER_NAME="${NGINX_SERVER_NAME:-_}"
export NGINX_HTTP_PORT="${NGINX_HTTP_PORT:-80}"
export NGINX_HTTPS_PORT="${NGINX_HTTPS_PORT:-443}"
export NGINX_ALT_HTTPS_PORT="${NGINX_ALT_HTTPS_PORT:-8443}"
export WEBHOOK_PATH="${WEBHOOK_PATH:-/telegram/webhook}"
export NGINX_BOT_SERVERS="${NGINX_BOT_SERVERS:-server 127.0.0.1:8080 max_fails=1 fail_timeout=2s;}"
export NGINX_BACKEND_SERVERS="${NGINX_BACKEND_SERVERS:-server 127.0.0.1:8000 max_fails=1 fail_timeout=2s;}"
export NGINX_RESOLVER="${NGINX_RESOLVER:-127.0.0.1}"
export NGINX_TELEGRAM_ONLY="${NGINX_TELEGRAM_ONLY:-off}"

render() {
    local dir="$1" template name defined
    mkdir -p "$dir/conf.d" "$dir/ssl" "$dir/temp"
    cp "$root/nginx/nginx.conf" "$dir/nginx.conf"
    # The variables to replace: as docker-entrypoint.d/20-envsubst-on-templates.sh lists them,
    # every environment variable whose name matches the filter.
    defined=""
    while IFS= read -r name; do
        defined+="\${$name} "
    done < <(compgen -e | grep -E "$NGINX_ENVSUBST_FILTER" || true)
    for template in "$root"/nginx/templates/*.template; do
        name="$(basename "$template" .template)"
        envsubst "$defined" <"$template" >"$dir/conf.d/$name"
    done
    cat >"$dir/conf.d/00-local-paths.conf" <<PATHS
# Local run only: temporary files under this directory rather than the packaged paths.
client_body_temp_path $dir/temp/body;
proxy_temp_path $dir/temp/proxy;
fastcgi_temp_path $dir/temp/fastcgi;
uwsgi_temp_path $dir/temp/uwsgi;
scgi_temp_path $dir/temp/scgi;
PATHS
    if [ ! -e "$dir/ssl/fullchain.pem" ]; then
        local cert_name="$NGINX_SERVER_NAME"
        [ "$cert_name" != "_" ] || cert_name=127.0.0.1
        "$root/scripts/self_signed_cert.sh" --out "$dir/ssl" --days 2 "$cert_name" >/dev/null
    fi
}

nginx_test() {
    local dir status=0
    dir="$(mktemp -d)"
    render "$dir"
    local globals="pid $dir/nginx.pid;"
    # Workers of a root master switch to the compiled-in user, which cannot read this
    # directory; the check is the same either way.
    [ "$(id -u)" -ne 0 ] || globals="$globals user root;"
    nginx -t -q -p "$dir/" -c "$dir/nginx.conf" -e stderr -g "$globals" || status=$?
    rm -rf "$dir"
    if [ "$status" -eq 0 ]; then
        echo "nginx_local: nginx -t accepts nginx/nginx.conf with nginx/templates/"
    fi
    return "$status"
}

case "${1:-}" in
    render)
        [ -n "${2:-}" ] || { echo "usage: $0 render DIR" >&2; exit 2; }
        mkdir -p "$2"
        render "$(cd "$2" && pwd)"
        ;;
    test) nginx_test ;;
    *) sed -n '2,13s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
