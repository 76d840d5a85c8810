#!/usr/bin/env bash
# bench/gateway.sh [BIN]: what `cutover serve` costs on the request path,
# measured against `cutover sim` directly and against nginx as the reference
# proxy. wrk on loopback, a ~1.5 KB non-streaming chat completion
# (bench/gateway_chat.lua), keep-alive, at 1, 16 and 64 connections:
#
#   sim direct                 the floor: no proxy at all
#   nginx proxy_pass           reference proxy (upstream keep-alive pool)
#   nginx mirror               reference shadowing: mirror to an equally fast candidate
#   nginx mirror, slow cand.   the candidate answers 20 ms later
#   cutover incumbent          workload in incumbent mode (one upstream call)
#   cutover shadow             shadow mode, equally fast candidate (two upstream calls)
#   cutover shadow, slow cand. shadow mode, the candidate answers 20 ms later
#   cutover canary 10%         canary mode, 10% of requests on the candidate
#
# Two sims: the incumbent's (answers at once) and the slow candidate's (ttft
# 20 ms); the equally fast candidate is a second model on the incumbent's sim,
# like nginx's mirror to it. Each proxy runs as one process with one worker
# (WORKERS) and is restarted per target, so its peak RSS (VmHWM) is its own.
# Prints requests/s, p50, p99, the p50 added over direct, the proxy's CPU
# time per request (utime+stime from /proc/PID/stat) and its peak RSS, the
# ratios cutover/nginx, and the targets of issue 3 next to them. Figures,
# never assertions: exit 0 unless the gateway or a sim fails to run; when
# `cutover serve` is not in BIN yet, says so and measures only the references.
#
# Knobs (environment): DURATION (5s), REPEAT (1: wrk runs per point, the
# median kept), CONNS ("1 16 64"), WRK_THREADS (1),
# WORKERS (1: gateway workers), SIM_THREADS (1), WARMUP (1s), SLOW_TTFT (20ms),
# TARGETS (space-separated subset of: direct nginx nginx_mirror
# nginx_mirror_slow incumbent shadow shadow_slow canary10), NGINX (path),
# PAIRS (5: paired rounds, below; 0: none), PAIR_DURATION (3s),
# GW_YAML (more top-level cutover.yaml, e.g. 'recorder: {priority: normal}').
#
# The targets are checked on paired rounds: sim, nginx and one cutover
# process run side by side and take turns, one short run each per round, so
# that a machine whose speed drifts (a shared VM) skews both sides of each
# ratio alike. Each ratio is the median over the rounds, printed with its
# range; the table above them is the per-target runs.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$HERE/../build/cutover}
DURATION=${DURATION:-5s}
REPEAT=${REPEAT:-1}
case $REPEAT in ''|*[!0-9]*|0) echo "bench/gateway.sh: REPEAT must be a positive integer, not '$REPEAT'"; exit 2 ;; esac
CONNS=${CONNS:-"1 16 64"}
WRK_THREADS=${WRK_THREADS:-1}
WORKERS=${WORKERS:-1}
SIM_THREADS=${SIM_THREADS:-1}
WARMUP=${WARMUP:-1s}
PAIRS=${PAIRS:-5}
PAIR_DURATION=${PAIR_DURATION:-3s}
case $PAIRS in ''|*[!0-9]*) echo "bench/gateway.sh: PAIRS must be a number, not '$PAIRS'"; exit 2 ;; esac
SLOW_TTFT=${SLOW_TTFT:-20ms}
ALL_TARGETS="direct nginx nginx_mirror nginx_mirror_slow incumbent shadow shadow_slow canary10"
TARGETS=${TARGETS:-$ALL_TARGETS}
# run order: each cutover target right after the nginx figure it is compared
# with, so that a load change on a shared machine skews both alike
RUN_ORDER="direct nginx incumbent canary10 nginx_mirror shadow nginx_mirror_slow shadow_slow"
NGINX=${NGINX:-$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)}
LUA=$HERE/gateway_chat.lua

say() { echo "bench/gateway.sh: $*"; }
command -v wrk >/dev/null || { say "wrk is missing (scripts/deps.sh installs it)"; exit 1; }
command -v curl >/dev/null || { say "curl is missing"; exit 1; }
[ -x "$BIN" ] || { say "no cutover binary at $BIN (build first, or pass its path as \$1)"; exit 1; }
BIN=$(realpath "$BIN")
HZ=$(getconf CLK_TCK)

dir=$(mktemp -d "${TMPDIR:-/tmp}/cutover-bench-gw.XXXXXX")
declare -A PIDS=()     # name -> pid of everything started here
stop_pid() { # stop_pid NAME: SIGTERM, 5 s, SIGKILL; returns the exit status
  local name=$1 pid=${PIDS[$1]:-} rc=0
  [ -n "$pid" ] || return 0
  unset "PIDS[$name]"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name (pid $pid) ignored SIGTERM for 5 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || rc=$?
  return $rc
}
cleanup() {
  local n
  for n in "${!PIDS[@]}"; do stop_pid "$n" || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_port_file() { # wait_port_file PID FILE → 0 once FILE is non-empty
  for _ in $(seq 100); do
    [ -s "$2" ] && return 0
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ---- the sims ------------------------------------------------------------------
ANSWER="Thanks, I found order 4471-2290-18: the missing hardcover ships separately and should arrive within two working days. The address of order 4471-2291-02 can still be changed until it is packed; reply with the new address and I will update it."
cat >"$dir/sim-fast.yaml" <<EOF
seed: 1
models:
  gpt-4o: {provider: openai, template: "$ANSWER"}
EOF
cat >"$dir/sim-slow.yaml" <<EOF
seed: 1
models:
  gpt-4o: {provider: openai, template: "$ANSWER", latency: {ttft: $SLOW_TTFT}}
EOF
start_sim() { # start_sim NAME → sets SIM_PORT
  "$BIN" sim --listen 127.0.0.1:0 --threads "$SIM_THREADS" --scenario "$dir/$1.yaml" \
    --port-file "$dir/$1.port" >"$dir/$1.log" 2>&1 &
  PIDS[$1]=$!
  if ! wait_port_file "${PIDS[$1]}" "$dir/$1.port"; then
    say "cutover sim ($1) did not start:"; sed 's/^/  | /' "$dir/$1.log" | tail -n 20; exit 1
  fi
  SIM_PORT=$(cat "$dir/$1.port")
}
start_sim sim-fast; fast_port=$SIM_PORT
start_sim sim-slow; slow_port=$SIM_PORT
export OPENAI_API_KEY=sk-bench-upstream

# ---- probes and measurements ----------------------------------------------------
probe() { # probe URL [WORKLOAD] → 0 when a chat completion answers 200
  local hdr=()
  [ -n "${2:-}" ] && hdr=(-H "X-Cutover-Workload: $2")
  local code
  code=$(curl -s -o "$dir/probe.out" -w '%{http_code}' --max-time 5 "${hdr[@]}" \
    -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-bench' \
    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"probe"}]}' "$1/v1/chat/completions" || true)
  [ "$code" = 200 ]
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
vmhwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

declare -A RPS=() P50=() P99=() CPU=() RSS=() ERRS=() STATE=() LABELS=()
LABELS=([direct]="sim direct" [nginx]="nginx proxy_pass" [nginx_mirror]="nginx mirror"
        [nginx_mirror_slow]="nginx mirror, +${SLOW_TTFT} cand."
        [incumbent]="cutover incumbent" [shadow]="cutover shadow"
        [shadow_slow]="cutover shadow, +${SLOW_TTFT} cand." [canary10]="cutover canary 10%")

measure() { # measure KEY PID URL [WORKLOAD]: warm-up, then one wrk run per connection count
  local key=$1 pid=$2 url=$3 wl=${4:-} c t t0 t1 line
  BENCH_WORKLOAD=$wl wrk -t1 -c16 -d"$WARMUP" -s "$LUA" "$url" >/dev/null 2>&1 || true
  local rep runs best
  for c in $CONNS; do
    t=$(( WRK_THREADS < c ? WRK_THREADS : c ))
    # REPEAT runs; the one with the median req/s is kept (with its own CPU
    # time), which damps a neighbour's burst on a shared machine
    runs=""
    for rep in $(seq "$REPEAT"); do
      t0=$(cpu_ticks "$pid")
      BENCH_WORKLOAD=$wl wrk -t"$t" -c"$c" -d"$DURATION" -s "$LUA" "$url" >"$dir/wrk.out" 2>&1 || true
      t1=$(cpu_ticks "$pid")
      line=$(grep '^BENCH ' "$dir/wrk.out" || true)
      [ -n "$line" ] && runs+="$(echo "$line" | awk -v t=$((t1 - t0)) '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%.3f %d %s\n", (v["duration_us"] > 0 ? v["requests"] * 1e6 / v["duration_us"] : 0), t, $0 }')"$'\n'
    done
    best=$(printf '%s' "$runs" | grep . | sort -n -k1,1 | awk '{ l[NR] = $0 } END { if (NR) print l[int((NR + 1) / 2)] }')
    line=$(echo "$best" | cut -d' ' -f3-)
    t0=0; t1=$(echo "$best" | cut -d' ' -f2)
    if [ -z "$line" ]; then
      say "$key c=$c: wrk printed no result:"; sed 's/^/  | /' "$dir/wrk.out" | tail -n 5
      continue
    fi
    kill -0 "$pid" 2>/dev/null || { say "$key: the process under test died during c=$c"; STATE[$key]="died"; return 1; }
    eval "$(echo "$line" | sed 's/^BENCH //' | tr ' ' '\n' | sed 's/^/local b_/')"
    RPS[$key,$c]=$(awk -v n="$b_requests" -v d="$b_duration_us" 'BEGIN { printf "%.0f", (d > 0 ? n * 1e6 / d : 0) }')
    P50[$key,$c]=$b_p50_us
    P99[$key,$c]=$b_p99_us
    CPU[$key,$c]=$(awk -v n="$b_requests" -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }')
    RSS[$key,$c]=$(vmhwm_kb "$pid")
    ERRS[$key,$c]=$((b_non2xx + b_sockerr))
    BODY=$b_body
  done
  STATE[$key]=ok
}

# ---- nginx ----------------------------------------------------------------------
pick_port() { # a free loopback port below the usual ephemeral range
  local p
  for _ in $(seq 50); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}
start_nginx() { # start_nginx KEY TEMPLATE MIRROR_PORT → 0 and URL set once it serves
  local key=$1 tpl=$2 mport=$3 ndir="$dir/nginx-$1" port attempt
  URL=""
  if [ -z "$NGINX" ]; then STATE[$key]="nginx missing"; return 1; fi
  for attempt in 1 2 3 4 5; do
    port=$(pick_port) || { STATE[$key]="no free port"; return 1; }
    rm -rf "$ndir"; mkdir -p "$ndir"
    sed -e "s|@DIR@|$ndir|g" -e "s|@PORT@|$port|g" -e "s|@SIM_PORT@|$fast_port|g" \
        -e "s|@MIRROR_PORT@|$mport|g" "$HERE/nginx/$tpl" >"$ndir/nginx.conf"
    "$NGINX" -p "$ndir" -c "$ndir/nginx.conf" -e "$ndir/error.log" >"$ndir/stdout" 2>&1 &
    PIDS[$key]=$!
    for _ in $(seq 50); do
      probe "http://127.0.0.1:$port" && break
      kill -0 "${PIDS[$key]}" 2>/dev/null || break
      sleep 0.1
    done
    if probe "http://127.0.0.1:$port"; then
      URL="http://127.0.0.1:$port"
      return 0
    fi
    stop_pid "$key" || true
    grep -q "Address already in use" "$ndir/error.log" "$ndir/stdout" 2>/dev/null && continue
    say "nginx ($key) did not serve:"; cat "$ndir/error.log" "$ndir/stdout" "$dir/probe.out" 2>/dev/null | sed 's/^/  | /' | tail -n 20
    STATE[$key]="nginx failed"
    return 1
  done
  STATE[$key]="no free port"
  return 1
}
run_nginx() { # run_nginx KEY TEMPLATE MIRROR_PORT
  start_nginx "$@" || return 0
  measure "$1" "${PIDS[$1]}" "$URL" || true
  stop_pid "$1" || true
}

# ---- cutover serve ----------------------------------------------------------------
SERVE=unknown   # unknown | ok | missing | failed
cat >"$dir/cutover.yaml" <<EOF
# written by bench/gateway.sh
listen: 127.0.0.1:0
workers: $WORKERS
store: sqlite:$dir/cutover.db
log_level: warn
${GW_YAML:-}
providers:
  fast: {kind: openai, base_url: "http://127.0.0.1:$fast_port/v1", api_key_env: OPENAI_API_KEY}
  slow: {kind: openai, base_url: "http://127.0.0.1:$slow_port/v1", api_key_env: OPENAI_API_KEY}
models:
  gpt-4o: {provider: fast}
  gpt-4o-twin: {provider: fast, upstream: gpt-4o}
  gpt-4o-slow: {provider: slow, upstream: gpt-4o}
workloads:
  bench_incumbent:   {incumbent: gpt-4o, candidate: gpt-4o-twin, mode: incumbent}
  bench_shadow:      {incumbent: gpt-4o, candidate: gpt-4o-twin, mode: shadow}
  bench_shadow_slow: {incumbent: gpt-4o, candidate: gpt-4o-slow, mode: shadow}
  bench_canary:      {incumbent: gpt-4o, candidate: gpt-4o-twin, mode: canary, percent: 10}
EOF
start_cutover() { # start_cutover KEY → 0 and URL set once it listens
  local key=$1 log="$dir/gw-$1.log" rc
  URL=""
  case $SERVE in missing|failed) STATE[$key]="cutover serve $SERVE"; return 1 ;; esac
  rm -f "$dir/gw.port"
  "$BIN" serve -c "$dir/cutover.yaml" --listen 127.0.0.1:0 --workers "$WORKERS" \
    --port-file "$dir/gw.port" >"$dir/gw-$1.out" 2>"$log" &
  PIDS[$key]=$!
  if ! wait_port_file "${PIDS[$key]}" "$dir/gw.port"; then
    rc=0; stop_pid "$key" || rc=$?
    if grep -qiE "unknown command|no such command" "$log" "$dir/gw-$1.out" 2>/dev/null; then
      SERVE=missing
      say "\`cutover serve\` is not available in $BIN yet: the cutover rows are skipped"
    else
      SERVE=failed
      say "cutover serve did not start (exit $rc):"; sed 's/^/  | /' "$log" | tail -n 20
    fi
    STATE[$key]="cutover serve $SERVE"
    return 1
  fi
  SERVE=ok
  URL="http://127.0.0.1:$(cat "$dir/gw.port")"
}
stop_cutover() { # stop_cutover KEY: a non-zero exit is reported and fails the run
  local key=$1 rc=0
  stop_pid "$key" || rc=$?
  if [ "$rc" -ne 0 ]; then
    say "cutover serve ($key) exited with status $rc (log: last lines):"; sed 's/^/  | /' "$dir/gw-$key.log" | tail -n 10
    [ "${STATE[$key]:-}" = ok ] && STATE[$key]="ok (exit $rc)"
    GW_FAILED=1
  fi
  return 0
}
run_cutover() { # run_cutover KEY WORKLOAD
  local key=$1 wl=$2
  start_cutover "$key" || return 0
  if ! probe "$URL" "$wl"; then
    say "cutover ($key) does not answer a chat completion with 200:"
    sed 's/^/  | /' "$dir/probe.out" | head -c 600; echo
    STATE[$key]="probe failed"
  else
    measure "$key" "${PIDS[$key]}" "$URL" "$wl" || true
  fi
  stop_cutover "$key"
}
GW_FAILED=0

# ---- run ----------------------------------------------------------------------------
echo "== cutover serve vs sim direct vs nginx: wrk $DURATION per point (median of $REPEAT), $CONNS connection(s), keep-alive"
echo "   $(nproc) core(s); wrk threads ≤ $WRK_THREADS; one proxy process with $WORKERS worker(s); sim threads $SIM_THREADS;"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure but CPU µs)"
echo "   slow candidate: ttft $SLOW_TTFT; nginx: $([ -n "$NGINX" ] && "$NGINX" -v 2>&1 | sed 's/^nginx version: //' || echo "not installed")"
for k in $TARGETS; do
  case " $ALL_TARGETS " in *" $k "*) ;; *) say "unknown target '$k' (known: $ALL_TARGETS)"; exit 2 ;; esac
done
want() { case " $TARGETS " in *" $1 "*) return 0 ;; esac; return 1; }
for k in $RUN_ORDER; do
  want "$k" || continue
  case $k in
    direct)            measure direct "${PIDS[sim-fast]}" "http://127.0.0.1:$fast_port" || true ;;
    nginx)             run_nginx nginx proxy.conf.in "$fast_port" ;;
    nginx_mirror)      run_nginx nginx_mirror mirror.conf.in "$fast_port" ;;
    nginx_mirror_slow) run_nginx nginx_mirror_slow mirror.conf.in "$slow_port" ;;
    incumbent)         run_cutover incumbent bench_incumbent ;;
    shadow)            run_cutover shadow bench_shadow ;;
    shadow_slow)       run_cutover shadow_slow bench_shadow_slow ;;
    canary10)          run_cutover canary10 bench_canary ;;
  esac
done
[ -z "${NGINX}" ] && say "nginx is not installed: no reference rows (Debian: apt-get install nginx-light)"

# ---- paired rounds: the ratios the targets are checked against ----------------------
# On a shared machine the speed drifts by tens of percent from one minute to
# the next, and the table's rows are measured minutes apart. Here the sim,
# nginx and one cutover process (its incumbent and shadow workloads) run side
# by side and take turns: one short wrk run each per round, the order
# reversed every other round. A round's ratios are measured under the same
# conditions; the median over PAIRS rounds is what the targets are checked
# against, with the range next to it.
declare -A PR=() PP=()   # PR[KEY,C,ROUND] req/s, PP[KEY,C,ROUND] p50 µs
PAIRED=0
pair_run() { # pair_run KEY URL WORKLOAD C ROUND
  local line t
  t=$(( WRK_THREADS < $4 ? WRK_THREADS : $4 ))
  BENCH_WORKLOAD=$3 wrk -t"$t" -c"$4" -d"$PAIR_DURATION" -s "$LUA" "$2" >"$dir/wrk.out" 2>&1 || true
  line=$(grep '^BENCH ' "$dir/wrk.out" || true)
  [ -n "$line" ] || return 0
  eval "$(echo "$line" | sed 's/^BENCH //' | tr ' ' '\n' | sed 's/^/local b_/')"
  PR[$1,$4,$5]=$(awk -v n="$b_requests" -v d="$b_duration_us" 'BEGIN { printf "%.0f", (d > 0 ? n * 1e6 / d : 0) }')
  PP[$1,$4,$5]=$b_p50_us
  sleep 0.3 # the recorder's last batch (flushed every 200 ms) is written before the next run, not during it
}
if [ "$PAIRS" -gt 0 ] && want nginx && { want incumbent || want shadow; } && [ -n "$NGINX" ] &&
   [ "$SERVE" != missing ] && [ "$SERVE" != failed ]; then
  if start_nginx pair_nginx proxy.conf.in "$fast_port"; then
    nginx_url=$URL
    if start_cutover pair_cutover && probe "$URL" bench_incumbent; then
      declare -A PURL=([direct]="http://127.0.0.1:$fast_port" [nginx]=$nginx_url [incumbent]=$URL [shadow]=$URL)
      declare -A PWL=([direct]="" [nginx]="" [incumbent]=bench_incumbent [shadow]=bench_shadow)
      order="direct nginx"
      want incumbent && order+=" incumbent"
      want shadow && order+=" shadow"
      reverse=$(echo "$order" | tr ' ' '\n' | tac | tr '\n' ' ')
      for k in $order; do
        BENCH_WORKLOAD=${PWL[$k]} wrk -t1 -c16 -d"$WARMUP" -s "$LUA" "${PURL[$k]}" >/dev/null 2>&1 || true
      done
      for c in $CONNS; do
        for r in $(seq "$PAIRS"); do
          o=$order
          [ $((r % 2)) -eq 0 ] && o=$reverse
          for k in $o; do pair_run "$k" "${PURL[$k]}" "${PWL[$k]}" "$c" "$r"; done
        done
      done
      PAIRED=1
    fi
    [ -n "${PIDS[pair_cutover]:-}" ] && stop_cutover pair_cutover
    stop_pid pair_nginx || true
  fi
fi
# pair_stat NUM DEN C [p50] → "median min max" of the rounds' ratios: req/s,
# or with p50 the p50 added over the same round's direct run (rounds where
# DEN added nothing measurable are left out); empty without rounds
pair_stat() {
  local num=$1 den=$2 c=$3 mode=${4:-rps} r a b d vals=""
  for r in $(seq "$PAIRS"); do
    if [ "$mode" = rps ]; then
      a=${PR[$num,$c,$r]:-}; b=${PR[$den,$c,$r]:-}
    else
      d=${PP[direct,$c,$r]:-}; a=${PP[$num,$c,$r]:-}; b=${PP[$den,$c,$r]:-}
      [ -n "$d" ] && [ -n "$a" ] && [ -n "$b" ] || continue
      a=$((a - d)); b=$((b - d))
    fi
    [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt 0 ] || continue
    vals+="$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f", a / b }')"$'\n'
  done
  printf '%s' "$vals" | grep . | sort -g | awk '{ v[NR] = $1 }
    END { if (NR) printf "%.2f %.2f %.2f %d\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR], NR }'
}

# ---- report -----------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1000 }'; }
sms() { awk -v u="$1" 'BEGIN { printf "%+.3f", u / 1000 }'; }   # signed
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
added() { # added KEY C → µs over direct's p50 (empty when unknown)
  [ -n "${P50[$1,$2]:-}" ] && [ -n "${P50[direct,$2]:-}" ] && echo $(( ${P50[$1,$2]} - ${P50[direct,$2]} ))
  return 0
}
echo
echo "request body: ${BODY:-?} bytes; latencies in ms; CPU = the proxy's user+system time per request (direct: the sim's)"
printf "%-30s %5s %9s %8s %8s %9s %9s %8s %10s %10s\n" target conns "req/s" p50 p99 "+p50" "CPU µs" "RSS MB" "rps/nginx" "+p50/nginx"
for k in $ALL_TARGETS; do
  want "$k" || continue
  st=${STATE[$k]:-not run}
  if [ "${st%% *}" != ok ]; then
    printf "%-30s %s\n" "${LABELS[$k]}" "— ($st)"
    continue
  fi
  for c in $CONNS; do
    [ -n "${RPS[$k,$c]:-}" ] || { printf "%-30s %5s  no result\n" "${LABELS[$k]}" "$c"; continue; }
    add=$(added "$k" "$c"); [ "$k" = direct ] && add=""
    rr=- ar=-
    case $k in incumbent|shadow|shadow_slow|canary10)
      rr=$(ratio "${RPS[$k,$c]}" "${RPS[nginx,$c]:-0}")
      [ -n "$add" ] && [ -n "$(added nginx "$c")" ] && ar=$(ratio "$add" "$(added nginx "$c")")
    esac
    errs=""
    [ "${ERRS[$k,$c]:-0}" -gt 0 ] && errs="  (${ERRS[$k,$c]} errors)"
    printf "%-30s %5s %9s %8s %8s %9s %9s %8.1f %10s %10s%s\n" "${LABELS[$k]}" "$c" "${RPS[$k,$c]}" \
      "$(ms "${P50[$k,$c]}")" "$(ms "${P99[$k,$c]}")" "$([ -n "$add" ] && sms "$add" || echo -)" \
      "${CPU[$k,$c]}" "$(awk -v k="${RSS[$k,$c]}" 'BEGIN { print k / 1024 }')" "$rr" "$ar" "$errs"
  done
done

echo
echo "targets (issue 3; figures, not assertions):"
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { if (v == "-" || v == "") { print "n/a"; exit }
  ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 <= t + 0); print ok ? "ok" : "MISSED" }'; }
[ "$PAIRED" = 1 ] && echo "  (throughput and added p50: median over $PAIRS paired rounds of $PAIR_DURATION, range in brackets; the table's single runs after 'table')"
# paired KEY DEN C [p50] → "R× [min–max]" from the paired rounds, or nothing
paired() {
  local st
  [ "$PAIRED" = 1 ] || return 0
  st=$(pair_stat "$@")
  [ -n "$st" ] && echo "$st" | awk '{ printf "%s× [%s–%s]", $1, $2, $3 }'
  return 0
}
for c in $CONNS; do
  line="  c=$c:"
  pr=$(paired incumbent nginx "$c")
  if [ -n "$pr" ]; then
    t=-; [ -n "${RPS[incumbent,$c]:-}" ] && [ -n "${RPS[nginx,$c]:-}" ] && t=$(ratio "${RPS[incumbent,$c]}" "${RPS[nginx,$c]}")
    echo "$line incumbent throughput $pr nginx; table ${t}× (target ≥ 0.7×) $(verdict "${pr%%×*}" 0.7 ">=")"
    line="       "
  elif [ -n "${RPS[incumbent,$c]:-}" ] && [ -n "${RPS[nginx,$c]:-}" ]; then
    r=$(ratio "${RPS[incumbent,$c]}" "${RPS[nginx,$c]}")
    echo "$line incumbent throughput ${r}× nginx (target ≥ 0.7×) $(verdict "$r" 0.7 ">=")"
    line="       "
  fi
  pr=$(paired incumbent nginx "$c" p50)
  a=$(added incumbent "$c"); n=$(added nginx "$c")
  if [ -n "$pr" ]; then
    t="-"; [ -n "$a" ] && [ -n "$n" ] && [ "$n" -gt 0 ] && t="$(ratio "$a" "$n")×"
    echo "$line incumbent added p50 $pr nginx's; table $(sms "${a:-0}") ms vs $(sms "${n:-0}") ms = $t (target ≤ 1.5×) $(verdict "${pr%%×*}" 1.5 "<=")"
    line="       "
  elif [ -n "$a" ] && [ -n "$n" ]; then
    if [ "$n" -gt 0 ]; then
      r=$(ratio "$a" "$n")
      echo "$line incumbent added p50 $(sms "$a") ms vs nginx's $(sms "$n") ms = ${r}× (target ≤ 1.5×) $(verdict "$r" 1.5 "<=")"
    else
      echo "$line incumbent added p50 $(sms "$a") ms; nginx's $(sms "$n") ms is within noise: no ratio (target ≤ 1.5×) n/a"
    fi
    line="       "
  fi
  m=""; [ -n "${RPS[nginx_mirror,$c]:-}" ] && [ -n "${RPS[nginx,$c]:-}" ] && m="; nginx mirror (table): $(ratio "${RPS[nginx_mirror,$c]}" "${RPS[nginx,$c]}")×"
  pr=$(paired shadow nginx "$c")
  if [ -n "$pr" ]; then
    t=-; [ -n "${RPS[shadow,$c]:-}" ] && [ -n "${RPS[nginx,$c]:-}" ] && t=$(ratio "${RPS[shadow,$c]}" "${RPS[nginx,$c]}")
    echo "$line shadow throughput $pr nginx plain; table ${t}× (target ≥ 0.5×) $(verdict "${pr%%×*}" 0.5 ">=")$m"
    line="       "
  elif [ -n "${RPS[shadow,$c]:-}" ] && [ -n "${RPS[nginx,$c]:-}" ]; then
    r=$(ratio "${RPS[shadow,$c]}" "${RPS[nginx,$c]}")
    echo "$line shadow throughput ${r}× nginx plain (target ≥ 0.5×) $(verdict "$r" 0.5 ">=")$m"
    line="       "
  fi
  if [ -n "${P50[shadow_slow,$c]:-}" ]; then
    # what the slow candidate alone costs the served path: against shadow mode
    # with an equally fast candidate (same two upstream calls), and against
    # incumbent mode (one call)
    ref=shadow; [ -n "${P50[shadow,$c]:-}" ] || ref=incumbent
    if [ -n "${P50[$ref,$c]:-}" ]; then
      d=$(( ${P50[shadow_slow,$c]} - ${P50[$ref,$c]} ))
      m=""
      [ "$ref" = shadow ] && [ -n "${P50[incumbent,$c]:-}" ] &&
        m=" ($(sms $(( ${P50[shadow_slow,$c]} - ${P50[incumbent,$c]} ))) ms over incumbent mode)"
      n=""
      [ -n "${P50[nginx_mirror_slow,$c]:-}" ] && [ -n "${P50[nginx_mirror,$c]:-}" ] &&
        n="; nginx mirror: $(sms $(( ${P50[nginx_mirror_slow,$c]} - ${P50[nginx_mirror,$c]} ))) ms"
      echo "$line ${SLOW_TTFT} slower candidate: served p50 $(sms "$d") ms over $([ "$ref" = shadow ] && echo "equal-speed shadow" || echo "incumbent mode")$m (target ≈ 0, < 2 ms) $(verdict "$(ms "$d")" 2 "<=")$n"
    fi
  fi
done
last=${CONNS##* }
rss=""
for k in incumbent shadow shadow_slow canary10; do
  [ -n "${RSS[$k,$last]:-}" ] && rss+=" ${LABELS[$k]#cutover } $(awk -v k="${RSS[$k,$last]}" 'BEGIN { printf "%.1f", k / 1024 }') MB $(verdict "$(awk -v k="${RSS[$k,$last]}" 'BEGIN { print k / 1024 }')" 32 "<=");"
done
[ -n "$rss" ] && echo "  peak RSS at $last connections (target ≤ 32 MB):${rss%;}"
case $SERVE in
  missing) echo "  cutover serve: not available in $BIN yet — only the references were measured" ;;
  failed)  echo "  cutover serve: did not start — see above" ;;
esac

echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$SERVE" = failed ] && exit 1
[ "$GW_FAILED" = 1 ] && exit 1
exit 0
