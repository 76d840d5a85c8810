#!/usr/bin/env bash
# make demo: the migration on one machine. Writes a demo folder with
# `cutover init`, starts `cutover sim` on a free loopback port, checks the
# config, talks to the simulated providers in each protocol, runs the gateway
# (shadow, canary, rollback), then the eval: a baseline of the incumbent and a
# gated comparison that catches the workload the candidate breaks, with the
# reports in $OUT/eval-report. Everything it starts is stopped on exit.
set -euo pipefail
BIN=$(realpath "${1:-build/cutover}")
OUT=${DEMO_DIR:-demo-out}
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
pids=()
# newest first: the traffic generator before the gateway, the gateway before the sim
cleanup() { for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done; }
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
step "cutover serve: the gateway, workload 'support' in shadow mode"
# the starter config listens on 127.0.0.1:8080; the demo takes a free port instead
(cd "$OUT" && exec "$BIN" serve --listen 127.0.0.1:0 --workers 2 --port-file gw.port) >"$OUT/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$OUT/gw.port" ] && break; sleep 0.05; done
[ -s "$OUT/gw.port" ] || { echo "gateway did not start:"; cat "$OUT/gateway.log"; exit 1; }
GW="http://127.0.0.1:$(cat "$OUT/gw.port")"
head -n 1 "$OUT/gateway.log"

step "a burst of traffic: 40 support questions from 8 users through the OpenAI API"
questions=("How many days do I have to ask for a refund?" "I forgot my password. What do I do?"
           "How long does standard shipping take?" "How do I cancel my subscription?")
for i in $(seq 0 39); do
  q=${questions[$((i % 4))]}
  curl -sS -o /dev/null -w '%{http_code} ' "$GW/v1/chat/completions" -H "Authorization: Bearer app-key" \
    -H 'Content-Type: application/json' \
    -d "{\"model\":\"support-bot\",\"user\":\"user-$((i % 8))\",\"messages\":[{\"role\":\"user\",\"content\":\"$q\"}]}" &
  if (( i % 8 == 7 )); then sleep 0.3; fi
done
sleep 1.5
echo
echo "one answer, with the headers saying who served it:"
curl -sS -D - "$GW/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"support-bot","messages":[{"role":"user","content":"How long does standard shipping take?"}]}' \
  | grep -iE '^x-cutover|^\{' | cut -c1-200
sleep 1   # the recorder writes in batches, off the hot path

step "cutover status"
(cd "$OUT" && "$BIN" status)

step "cutover pairs support -n 3: what the client got vs. what the candidate said"
(cd "$OUT" && "$BIN" pairs support -n 3 -w 100)

step "canary 10% (sticky per user), then a rollback"
(cd "$OUT" && "$BIN" mode support canary 10 --gateway "$GW" --reason "demo: start the canary")
(cd "$OUT" && "$BIN" rollback support --gateway "$GW" --reason "demo: rehearse the rollback")

step "cutover eval --arm incumbent --save-baseline: the incumbent's figures per workload"
(cd "$OUT" && "$BIN" eval --suite evals/golden.yaml --arm incumbent --save-baseline)

step "cutover eval: both arms on the golden set, gated per workload (the sim's candidate botches invoices)"
# exit 1 is the expected answer here: the extract gate fails; anything else is reported, not fatal
set +e
(cd "$OUT" && "$BIN" eval --suite evals/golden.yaml --out "$OUT/eval-report")
rc=$?
set -e
case $rc in
  1) echo "-> exit 1: a gate failed (expected: the candidate regresses on workload 'extract')" ;;
  0) echo "-> exit 0: every gate passed (unexpected for this scenario)" ;;
  3) echo "-> exit 3: inconclusive, more cases needed" ;;
  *) echo "-> exit $rc: the eval could not run" ;;
esac
[ -d "$OUT/eval-report" ] && echo "reports: $(cd "$OUT/eval-report" && ls | tr '\n' ' ')in $OUT/eval-report"

step "done: the demo folder is $OUT"

# ---------------------------------------------------------------------------
# rollout (issue 5): a staged rollout in compressed time, a candidate fault,
# the automatic rollback and its incident report. Self-contained: its own
# sim, gateway, config and store under $OUT/rollout.
# ---------------------------------------------------------------------------
step "rollout: shadow → canary 5% → 25% → 100%, at --time-scale 600 (a 5-minute hold passes in half a second)"
RO="$OUT/rollout"
mkdir -p "$RO"
cat > "$RO/sim.yaml" <<'YAML'
seed: 5
models:
  gpt-4o: {provider: openai, template: "{\"answer\": \"{{last_user}}\"}", latency: {ttft: 5ms, jitter: 0.2}}
  gpt-4.1: {provider: openai, template: "{\"answer\": \"{{last_user}}\"}", latency: {ttft: 5ms, jitter: 0.2}}
YAML
"$BIN" sim --listen 127.0.0.1:0 --scenario "$RO/sim.yaml" --port-file "$RO/sim.port" >"$RO/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$RO/sim.port" ] && break; sleep 0.05; done
RSIM="http://127.0.0.1:$(cat "$RO/sim.port")"
cat > "$RO/cutover.yaml" <<YAML
listen: 127.0.0.1:0
workers: 2
store: sqlite:$RO/cutover.db
log_level: warn
recorder: {flush_interval: 50ms}
providers:
  openai: {kind: openai, base_url: "$RSIM/v1", api_key_env: OPENAI_API_KEY}
models:
  gpt-4o: {provider: openai, price_input: 2.5, price_output: 10}
  gpt-4.1: {provider: openai, price_input: 2, price_output: 8}
workloads:
  extract:
    match: {models: [extractor]}
    incumbent: gpt-4o
    candidate: gpt-4.1
    contract: {format: json}
rollout:
  stages: [{mode: shadow, hold: 2m}, {percent: 5, hold: 5m}, {percent: 25, hold: 5m}, {percent: 100}]
  interval: 10s
  retain_incumbent: 30d
  triggers: {min_samples: 40}
YAML
"$BIN" serve -c "$RO/cutover.yaml" --port-file "$RO/gw.port" --time-scale 600 >"$RO/gateway.out" 2>"$RO/gateway.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$RO/gw.port" ] && break; sleep 0.05; done
RGW="http://127.0.0.1:$(cat "$RO/gw.port")"
head -n 1 "$RO/gateway.out"
"$BIN" rollout start extract -c "$RO/cutover.yaml" --reason "demo: move extraction to gpt-4.1"

# steady traffic from many users until the end of the demo
# ($! is xargs itself, so the cleanup on exit stops it)
seq 1 1000000 | xargs -P 6 -I{} curl -sS -o /dev/null "$RGW/v1/chat/completions" \
    -H 'Content-Type: application/json' \
    -d '{"model":"extractor","user":"user-{}","messages":[{"role":"user","content":"invoice {}"}]}' 2>/dev/null &
pids+=($!)

ro_wait() { # ro_wait PATTERN: until `rollout status --json` shows it (60 s at most)
  for _ in $(seq 1 600); do
    "$BIN" rollout status extract -c "$RO/cutover.yaml" --json | grep -q "$1" && return 0
    sleep 0.1
  done
  echo "timed out waiting for $1"; "$BIN" rollout status extract -c "$RO/cutover.yaml"; exit 1
}
ro_wait '"label": "canary 25%"'
"$BIN" rollout status extract -c "$RO/cutover.yaml"

step "rollout: the candidate starts failing 30% of its requests (sim fault hook)"
curl -sS -o /dev/null -X POST "$RSIM/_sim/models/gpt-4.1" -H 'Content-Type: application/json' \
  -d '{"faults":{"error_500":0.3}}'
ro_wait '"state": "rolled_back"'
grep 'rolled back' "$RO/gateway.log" | tail -n 1
"$BIN" rollout status extract -c "$RO/cutover.yaml"

step "rollout: cutover report incident latest (written automatically on the rollback)"
"$BIN" report incident latest -c "$RO/cutover.yaml" | head -n 40
echo "  ..."
step "rollout demo done: $RO"
