#!/bin/sh
# System packages the test suite and benchmarks need, from Debian (npm: axe-core, see
# scripts/install-axe.sh; a CJK font for Chromium's Chinese pages and the screenshots).
# Idempotent; needs root.
set -eu
PACKAGES="chromium redis-server npm fonts-wqy-microhei"
missing=""
for p in $PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "Missing Debian packages:$missing (run: sudo apt-get install$missing)" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
