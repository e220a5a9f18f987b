#!/usr/bin/env bash
# Make a self-signed TLS certificate for nginx, for a domain or an IP address.
#
#   scripts/self_signed_cert.sh [--out DIR] [--days N] [--force] DOMAIN_OR_IP
#
# Writes DIR/fullchain.pem (the certificate, public) and DIR/privkey.pem (the key, mode 600);
# DIR defaults to nginx/ssl/, which git ignores. Telegram accepts a self-signed certificate
# when the bot uploads it with setWebhook: set WEBHOOK_CERT (see README, "Certificates").
# The name must be exactly what WEBHOOK_BASE_URL uses (https://DOMAIN_OR_IP[:8443]).
set -euo pipefail

usage() {
    sed -n '2,9s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/nginx/ssl"
days=365
force=0
name=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --days) days="${2:?--days needs a number}"; shift 2 ;;
        --force) force=1; shift ;;
        -h | --help) usage ;;
        -*) echo "self_signed_cert: unknown option $1" >&2; usage ;;
        *) [ -z "$name" ] || usage; name="$1"; shift ;;
    esac
done
[ -n "$name" ] || usage
case "$days" in '' | *[!0-9]*) echo "self_signed_cert: --days must be a number" >&2; exit 2 ;; esac

if [[ "$name" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ || "$name" == *:* ]]; then
    san="IP:$name"
elif [[ "$name" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
    san="DNS:$name"
else
    echo "self_signed_cert: '$name' is neither a domain name nor an IP address" >&2
    exit 2
fi

mkdir -p "$out"
if [ "$force" -ne 1 ] && { [ -e "$out/fullchain.pem" ] || [ -e "$out/privkey.pem" ]; }; then
    echo "self_signed_cert: $out already holds a certificate; --force replaces it" >&2
    exit 1
fi

umask 077
work="$(mktemp -d "$out/.new-cert.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# RSA 2048 and SHA-256, as Telegram's guide to self-signed certificates uses.
openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days "$days" \
    -subj "/CN=$name" \
    -addext "subjectAltName=$san" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$work/privkey.pem" -out "$work/fullchain.pem" 2>/dev/null
chmod 600 "$work/privkey.pem"
chmod 644 "$work/fullchain.pem"
mv -f "$work/privkey.pem" "$out/privkey.pem"
mv -f "$work/fullchain.pem" "$out/fullchain.pem"
echo "self_signed_cert: $out/fullchain.pem and $out/privkey.pem for $name ($san, $days days)"
