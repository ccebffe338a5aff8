#!/usr/bin/env bash
# What packaging/build-deb.sh and tests/packaging/test_deb.sh need (kept as
# an entry point for them; the lists live in install-deps.sh).
exec bash "$(dirname "$0")/install-deps.sh" --packaging
