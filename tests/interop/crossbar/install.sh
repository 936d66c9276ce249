#!/usr/bin/env bash
# Install Crossbar.io (a WAMP router nobody here wrote) into its own virtualenv,
# tests/interop/crossbar/venv, for tests/test_interop_crossbar.py: our client against
# another router. Crossbar is never a dependency of promisifier; its virtualenv is
# separate and not committed. Run from anywhere (CI calls it from .ci/run); about two
# minutes on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")"
version="26.10.1"
if [ -x venv/bin/crossbar ] && venv/bin/crossbar version 2>/dev/null | grep -q "Crossbar.io *: $version"; then
  echo "crossbar $version already in tests/interop/crossbar/venv"
  exit 0
fi
rm -rf venv
echo "+ python3 -m venv tests/interop/crossbar/venv && pip install crossbar==$version"
python3 -m venv venv
venv/bin/pip install -q "crossbar==$version"
venv/bin/crossbar version | grep "Crossbar.io *:"
