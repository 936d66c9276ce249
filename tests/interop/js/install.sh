#!/usr/bin/env bash
# Install the autobahn-js and rpc-websockets pinned in package-lock.json for
# tests/test_interop_js.py, tests/test_rpc_websockets_js.py and tests/test_browser.py.
# Run from anywhere (CI calls it from .ci/run). Needs node (v20 on our machines) and npm.
set -euo pipefail
cd "$(dirname "$0")"
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/interop/js/install.sh: '$tool' not found; cannot install autobahn-js" >&2
    exit 1
  fi
done
echo "+ npm ci in tests/interop/js (node $(node --version), npm $(npm --version))"
npm ci --no-audit --no-fund
node -e "const ab = require('autobahn'); if (!ab.serializer.MsgpackSerializer) { throw new Error('autobahn-js has no msgpack serializer'); } console.log('autobahn-js ' + ab.version + ' installed (json, msgpack)')"
node -e "const { Client } = require('rpc-websockets'); if (typeof Client !== 'function') { throw new Error('rpc-websockets has no Client'); } console.log('rpc-websockets installed (' + JSON.parse(require('fs').readFileSync('node_modules/rpc-websockets/package.json')).version + ')')"
