#!/bin/sh
# axe-core (the accessibility checker the browser tests inject into the widget and softphone
# pages), from npm into .cache/npm. Idempotent; quick when installed.
set -eu
cd "$(dirname "$0")/.."
[ -f .cache/npm/node_modules/axe-core/axe.min.js ] && exit 0
command -v npm >/dev/null || { echo "npm is missing (run: sudo apt-get install npm)" >&2; exit 1; }
npm install --prefix .cache/npm --no-save --no-audit --no-fund --loglevel=error axe-core@4
