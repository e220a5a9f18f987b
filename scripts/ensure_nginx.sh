#!/usr/bin/env bash
# Make sure the tools the deployment checks run are here: nginx (the real one, Debian's
# package), envsubst (the nginx image renders its templates with it) and openssl.
# Installs what is missing with apt-get when run as root; otherwise says what to install.
# `make lint` and `make test` call it.
set -euo pipefail

missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v envsubst >/dev/null 2>&1 || missing+=(gettext-base)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ "${#missing[@]}" -gt 0 ] || exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure_nginx: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    exit 0
fi

echo "ensure_nginx: please install ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
exit 1
