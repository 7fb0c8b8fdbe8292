#!/bin/sh
# Debian packages the benchmark needs: wrk (load generator), nginx (the upstream page and the
# baseline reverse proxy), and Apache httpd with mod_auth_openidc (scenario F, the peer that
# does what the gateway does: OIDC sign-in + reverse proxy). Idempotent: installs only what
# is missing. Needs root.
set -eu
OIDC_MODULE=/usr/lib/apache2/modules/mod_auth_openidc.so
missing=""
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx-light"
[ -x /usr/sbin/apache2 ] || missing="$missing apache2"
[ -f "$OIDC_MODULE" ] || missing="$missing libapache2-mod-auth-openidc"
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "bench/setup.sh: need root to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The packages start a system nginx and a system Apache on port 80; the bench runs its own
# instances only (its own configuration files, its own ports, in the foreground).
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
    systemctl disable --now apache2 >/dev/null 2>&1 || true
fi
if [ -f /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi
if [ -f /run/apache2/apache2.pid ]; then kill "$(cat /run/apache2/apache2.pid)" 2>/dev/null || true; fi
