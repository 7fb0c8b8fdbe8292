#!/bin/sh
# System packages the test suite and benchmarks need, from Debian (npm: axe-core, see
# scripts/install-axe.sh; a CJK font for Chromium's Chinese pages and the screenshots).
# Idempotent; needs root.
set -eu
PACKAGES="chromium redis-server fonts-wqy-microhei"
missing=""
for p in $PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
# npm by its command, not its package: a machine with NodeSource's nodejs has npm inside it,
# and Debian's npm package conflicts with that nodejs.
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "Missing Debian packages:$missing (run: sudo apt-get install$missing)" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
