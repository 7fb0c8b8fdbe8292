#!/bin/sh
# Print the first of python3.11, python3.12, python3.13 that runs (the Makefile's default PYTHON).
# Each candidate is run, not only looked up: a pyenv shim exists for versions not installed.
for p in python3.11 python3.12 python3.13; do
    if "$p" -c 'import sys' >/dev/null 2>&1; then
        echo "$p"
        exit 0
    fi
done
