#!/usr/bin/env bash
# Installs the Debian packages cutover builds and tests with. As root it runs
# apt-get; otherwise it prints the exact command to run and exits 1.
# --check: exit 0 when everything is present, 1 otherwise (prints what is missing).
set -euo pipefail

pkgs=(build-essential cmake pkg-config curl
      libevent-dev libcurl4-openssl-dev libjansson-dev libfyaml-dev
      libsqlite3-dev libpq-dev libxxhash-dev libhttp-parser-dev libcmocka-dev
      sqlite3 wrk
      postgresql)  # server binaries only: tests start throwaway clusters, never the service

# --bench adds nginx, the reference proxy of `make bench` (not needed by the tests)
if [ "${1:-}" = "--bench" ]; then pkgs+=(nginx); shift; fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js runs the client compatibility tests; a machine may already have it
# from elsewhere, so only the command is checked.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ "${1:-}" = "--check" ]; then
  if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
  echo "missing: ${missing[*]}"
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: everything is installed"
  exit 0
fi

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]}"
  echo "deps: run as root:"
  echo "  apt-get update && $cmd"
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# packages that ship a service (nginx, postgresql) must not start it: the
# bench runs its own nginx, the tests their own PostgreSQL clusters
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}"
