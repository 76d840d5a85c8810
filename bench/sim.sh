#!/usr/bin/env bash
# bench/sim.sh [BIN]: requests/s of `cutover sim` under wrk — non-streaming
# OpenAI chat completions over keep-alive connections, zero latency (the
# built-in scenario). Starts the sim on an ephemeral loopback port, runs wrk
# with bench/sim_chat.lua, prints the figure and stops the sim.
# Knobs (environment): SIM_THREADS (1), CONNECTIONS (64), DURATION (10s),
# WRK_THREADS (1), SIM_STREAM=1 to bench SSE streams instead.
set -euo pipefail
BIN=$(realpath "${1:-build/cutover}")
HERE=$(cd "$(dirname "$0")" && pwd)
SIM_THREADS=${SIM_THREADS:-1}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}
WRK_THREADS=${WRK_THREADS:-1}
command -v wrk >/dev/null || { echo "bench/sim.sh: wrk is missing"; exit 1; }

dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

"$BIN" sim --listen 127.0.0.1:0 --threads "$SIM_THREADS" --port-file "$dir/port" >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 100); do
  [ -s "$dir/port" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "bench/sim.sh: the sim did not start:"; cat "$dir/err"; exit 1; }
  sleep 0.1
done
[ -s "$dir/port" ] || { echo "bench/sim.sh: the sim printed no port in 10 s"; exit 1; }
port=$(cat "$dir/port")

mode=JSON
[ "${SIM_STREAM:-0}" = 1 ] && mode=SSE
echo "== cutover sim: $mode chat completions, $SIM_THREADS sim thread(s), $CONNECTIONS keep-alive connections, $DURATION"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(cpu_ticks)
SIM_STREAM=${SIM_STREAM:-0} wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
  -s "$HERE/sim_chat.lua" "http://127.0.0.1:$port" | tee "$dir/wrk"
t1=$(cpu_ticks)
rps=$(awk '/^Requests\/sec:/ {print $2}' "$dir/wrk")
n=$(awk '/requests in/ {print $1}' "$dir/wrk")
# wrk shares the machine with the sim: requests per CPU-second of the sim
# itself is the figure that does not depend on what else is running
hz=$(getconf CLK_TCK)
per_cpu=$(awk -v n="$n" -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN { if (t > 0) printf "%d", n * hz / t; else print "?" }')
echo "sim: ${rps:-?} requests/s wall clock; ${per_cpu} requests per CPU-second of the sim"
