#!/usr/bin/env bash
# tests/compat/run.sh [BIN]: client compatibility tests. The official `openai`
# and `@anthropic-ai/sdk` npm packages (exact versions in package-lock.json)
# talk to `cutover serve`, which is served by `cutover sim` — both started
# here on ephemeral loopback ports with a temporary config, and stopped on exit.
#
# Exit code: node --test's (0 = every test passed); 1 when the sim or the
# gateway cannot be started, or when the gateway does not exit 0 on SIGTERM. Without node or npm the tests are skipped: a line
# says why and the exit code is $COMPAT_SKIP_CODE (default 0; ctest sets 77,
# its SKIP_RETURN_CODE).
#
# Knobs (environment): COMPAT_WORKERS (gateway workers, default 2),
# COMPAT_KEEP=1 keeps the temp dir (config, logs, store) and prints its path,
# COMPAT_TESTS="openai.test.mjs ..." runs only those files.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${1:-$ROOT/build/cutover}
SKIP_CODE=${COMPAT_SKIP_CODE:-0}
WORKERS=${COMPAT_WORKERS:-2}

say() { echo "compat: $*"; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing=()
  command -v node >/dev/null 2>&1 || missing+=(node)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  say "SKIP: ${missing[*]} not found — the SDK compatibility tests need Node.js and npm (scripts/deps.sh installs them)"
  exit "$SKIP_CODE"
fi
[ -x "$BIN" ] || { say "no cutover binary at $BIN (build first, or pass its path as \$1)"; exit 1; }
BIN=$(realpath "$BIN")

# ---- SDKs: npm ci from the committed lock file ------------------------------
# Serialised: the release and the sanitizer ctest runs may start together.
install_sdks() {
  if [ -d "$HERE/node_modules/openai" ] && [ -d "$HERE/node_modules/@anthropic-ai/sdk" ] &&
     [ ! "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
    return 0
  fi
  say "installing the SDKs (npm ci)"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) || {
    say "npm ci failed (the npm registry must be reachable once; node_modules is then reused)"
    return 1
  }
}
if command -v flock >/dev/null 2>&1; then
  lock="${TMPDIR:-/tmp}/cutover-compat-npm-$(id -u).lock"
  ( flock -w 300 9 || { say "timed out waiting for $lock"; exit 1; }; install_sdks ) 9>"$lock"
else
  install_sdks
fi

# ---- sim + gateway -----------------------------------------------------------
dir=$(mktemp -d "${TMPDIR:-/tmp}/cutover-compat.XXXXXX")
sim_pid=
gw_pid=
stop() { # stop PID [NAME]: SIGTERM, up to 5 s, then SIGKILL; returns the exit status
  local pid=$1 rc=0
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || rc=$?; return $rc; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "${2:-$pid} did not stop within 5 s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 137
  fi
  wait "$pid" 2>/dev/null || rc=$?
  return $rc
}
cleanup() {
  stop "$gw_pid" gateway || true
  stop "$sim_pid" sim || true
  gw_pid= sim_pid=
  if [ "${COMPAT_KEEP:-0}" = 1 ]; then say "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_port() { # wait_port PID PORTFILE NAME LOG
  for _ in $(seq 100); do
    [ -s "$2" ] && return 0
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$1" 2>/dev/null; then say "$3 printed no port within 10 s:"; else say "$3 exited before listening:"; fi
  sed 's/^/  | /' "$4" | tail -n 30
  return 1
}

# Every model answers from a template that names the model and the protocol it
# was asked with, so a test sees which upstream served it and whether the
# request was translated.
cat >"$dir/sim.yaml" <<'EOF'
seed: 7
models:
  gpt-4o:
    provider: openai
    template: "[{{model}}/{{protocol}}] {{system}} | {{last_user}}{{tool_result}}"
  claude-sonnet-4:
    provider: anthropic
    template: "[{{model}}/{{protocol}}] {{system}} | {{last_user}}{{tool_result}}"
  gpt-4o-500:
    provider: openai
    faults: {error_500: 1}
  claude-sonnet-4-500:
    provider: anthropic
    faults: {error_500: 1}
  gpt-4o-429:
    provider: openai
    faults: {error_429: 1, retry_after: 3s}
  claude-sonnet-4-429:
    provider: anthropic
    faults: {error_429: 1, retry_after: 3s}
EOF

"$BIN" sim --listen 127.0.0.1:0 --port-file "$dir/sim.port" --scenario "$dir/sim.yaml" \
  >"$dir/sim.log" 2>&1 &
sim_pid=$!
wait_port "$sim_pid" "$dir/sim.port" "cutover sim" "$dir/sim.log" || exit 1
sim_port=$(cat "$dir/sim.port")

export OPENAI_API_KEY=sk-compat-upstream-openai
export ANTHROPIC_API_KEY=sk-ant-compat-upstream
export COMPAT_KEY_OPENAI=sk-cutover-compat-openai-key
export COMPAT_KEY_ANTHROPIC=sk-cutover-compat-anthropic-key
export CUTOVER_ADMIN_TOKEN=compat-admin-token

cat >"$dir/cutover.yaml" <<EOF
# written by tests/compat/run.sh
listen: 127.0.0.1:0
workers: $WORKERS
store: sqlite:$dir/cutover.db
log_level: warn
providers:
  oa: {kind: openai, base_url: "http://127.0.0.1:$sim_port/v1", api_key_env: OPENAI_API_KEY, timeout: 20s}
  an: {kind: anthropic, base_url: "http://127.0.0.1:$sim_port", api_key_env: ANTHROPIC_API_KEY, timeout: 20s}
models:
  gpt-4o: {provider: oa}
  claude-sonnet-4: {provider: an}
  gpt-4o-500: {provider: oa}
  claude-sonnet-4-500: {provider: an}
  gpt-4o-429: {provider: oa}
  claude-sonnet-4-429: {provider: an}
workloads:
  # served by an OpenAI model / by an Anthropic model: each SDK talks to both
  via_openai:
    match: {models: [compat-gpt], api_keys_env: [COMPAT_KEY_OPENAI]}
    incumbent: gpt-4o
  via_anthropic:
    match: {models: [compat-claude], api_keys_env: [COMPAT_KEY_ANTHROPIC]}
    incumbent: claude-sonnet-4
  err500_openai:    {match: {models: [compat-gpt-500]},    incumbent: gpt-4o-500}
  err500_anthropic: {match: {models: [compat-claude-500]}, incumbent: claude-sonnet-4-500}
  err429_openai:    {match: {models: [compat-gpt-429]},    incumbent: gpt-4o-429}
  err429_anthropic: {match: {models: [compat-claude-429]}, incumbent: claude-sonnet-4-429}
  # modes, seen through the SDKs
  shadow_cross:
    match: {models: [compat-shadow]}
    incumbent: gpt-4o
    candidate: claude-sonnet-4
    mode: shadow
  canary_all:
    match: {models: [compat-canary-100]}
    incumbent: gpt-4o
    candidate: claude-sonnet-4
    mode: canary
    percent: 100
  fallback_cross:
    match: {models: [compat-fallback]}
    incumbent: claude-sonnet-4
    candidate: gpt-4o-500
    mode: candidate
    fallback: true
EOF

"$BIN" serve -c "$dir/cutover.yaml" --listen 127.0.0.1:0 --workers "$WORKERS" --port-file "$dir/gw.port" \
  >"$dir/gw.out" 2>"$dir/gw.log" &
gw_pid=$!
if ! wait_port "$gw_pid" "$dir/gw.port" "cutover serve" "$dir/gw.log"; then
  if grep -qiE "unknown (sub)?command|no such command|usage:" "$dir/gw.log" "$dir/gw.out" 2>/dev/null &&
     ! grep -q "listening" "$dir/gw.out" 2>/dev/null; then
    say "\`cutover serve\` is not available in $BIN (not built yet?)"
  fi
  exit 1
fi
gw_port=$(cat "$dir/gw.port")
grep -q "^cutover serve listening on 127.0.0.1:$gw_port\$" "$dir/gw.out" ||
  say "note: expected the line 'cutover serve listening on 127.0.0.1:$gw_port' on stdout, got: $(head -c 200 "$dir/gw.out")"

export CUTOVER_URL="http://127.0.0.1:$gw_port"
export SIM_URL="http://127.0.0.1:$sim_port"
say "sim on $SIM_URL, gateway on $CUTOVER_URL ($WORKERS workers); $(node --version), $(cd "$HERE" && node -p "const v = (p) => JSON.parse(require('fs').readFileSync('node_modules/' + p + '/package.json')).version; 'openai ' + v('openai') + ', @anthropic-ai/sdk ' + v('@anthropic-ai/sdk')")"

cd "$HERE"
read -r -a files <<<"${COMPAT_TESTS:-$(echo *.test.mjs)}"
rc=0
node --test --test-reporter=spec "${files[@]}" || rc=$?

# A clean stop is part of the contract: SIGTERM → exit 0.
grc=0
stop "$gw_pid" gateway || grc=$?
gw_pid=
if [ "$grc" -ne 0 ]; then
  say "FAIL: cutover serve exited with status $grc after SIGTERM"
  [ "$rc" -ne 0 ] || rc=1
fi
if [ "$rc" -ne 0 ]; then
  say "gateway log (last 40 lines):"
  tail -n 40 "$dir/gw.log" | sed 's/^/  | /'
fi
say "$([ "$rc" -eq 0 ] && echo PASS || echo "FAIL (exit $rc)")"
exit "$rc"
