#!/usr/bin/env bash
# make demo: the migration on one machine. Writes a demo folder with
# `cutover init`, starts `cutover sim` on a free loopback port, checks the
# config, and talks to the simulated providers in each protocol. Everything it
# starts is stopped on exit.
set -euo pipefail
BIN=$(realpath "${1:-build/cutover}")
OUT=${DEMO_DIR:-demo-out}
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "cutover init $OUT"
"$BIN" init "$OUT" >/dev/null
"$BIN" init "$OUT" --force | sed 's/^/  /'

step "cutover sim (simulated OpenAI, Anthropic and Gemini APIs on loopback)"
"$BIN" sim --listen 127.0.0.1:0 --scenario "$OUT/sim.yaml" --port-file "$OUT/sim.port" >"$OUT/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$OUT/sim.port" ] && break; sleep 0.05; done
[ -s "$OUT/sim.port" ] || { echo "sim did not start:"; cat "$OUT/sim.log"; exit 1; }
PORT=$(cat "$OUT/sim.port")
head -n 1 "$OUT/sim.log"
# the starter config must point at the port the sim actually got
"$BIN" init "$OUT" --sim-port "$PORT" --force >/dev/null

step "cutover check"
export OPENAI_API_KEY=sk-demo ANTHROPIC_API_KEY=sk-ant-demo
(cd "$OUT" && "$BIN" check)

BASE="http://127.0.0.1:$PORT"
step "OpenAI chat completions (JSON)"
curl -sS "$BASE/v1/chat/completions" -H "Authorization: Bearer $OPENAI_API_KEY" \
  -H 'Content-Type: application/json' \
  -d '{"model":"gpt-4o","messages":[{"role":"user","content":"How many days do I have to ask for a refund?"}]}'
echo
step "Anthropic messages (SSE stream)"
curl -sSN "$BASE/v1/messages" -H "x-api-key: $ANTHROPIC_API_KEY" -H 'anthropic-version: 2023-06-01' \
  -H 'Content-Type: application/json' \
  -d '{"model":"claude-sonnet-4","max_tokens":200,"stream":true,"messages":[{"role":"user","content":"How long does standard shipping take?"}]}'
step "Gemini generateContent (JSON)"
curl -sS "$BASE/v1beta/models/gemini-2.5-flash:generateContent" -H 'x-goog-api-key: demo-key' \
  -H 'Content-Type: application/json' \
  -d '{"contents":[{"role":"user","parts":[{"text":"I forgot my password. What do I do?"}]}]}'
echo
step "bad requests get the API's own errors"
curl -sS -w '  -> HTTP %{http_code}\n' "$BASE/v1/chat/completions" -H "Authorization: Bearer $OPENAI_API_KEY" \
  -H 'Content-Type: application/json' -d '{"model":"gpt-4o"}'
curl -sS -w '  -> HTTP %{http_code}\n' "$BASE/v1/messages" -H 'anthropic-version: 2023-06-01' \
  -H 'Content-Type: application/json' -d '{"model":"claude-sonnet-4","max_tokens":10,"messages":[]}'
step "a typo in the config is named with its line and column"
sed 's/^workers:/workerz:/' "$OUT/cutover.yaml" > "$OUT/typo.yaml"
"$BIN" check -c "$OUT/typo.yaml" || true
step "done: the demo folder is $OUT"
