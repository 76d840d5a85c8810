#!/usr/bin/env bash
# make bench: prints figures and ratios (never asserts wall-clock times).
# Each bench/<name>.sh takes the cutover binary as $1 and prints its own table.
set -euo pipefail
BIN=$(realpath "${1:-build/cutover}")
cd "$(dirname "$0")"
command -v wrk >/dev/null || { echo "bench: wrk is missing (scripts/deps.sh installs it)"; exit 1; }
# nginx is the reference proxy; only the benchmark needs it
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || ../scripts/deps.sh --bench || true
echo "cutover bench — $(nproc) core(s), $(uname -sr)"
for b in sim gateway eval recorder; do
  echo
  ./"$b".sh "$BIN"
done
