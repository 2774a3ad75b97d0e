#!/usr/bin/env bash
# Fulcrum benchmark: wrk against a backend directly, Fulcrum, nginx and HAProxy
# (interleaved rounds, medians), then large streaming transfers. See bench/README.md.
#
#   bash bench/run.sh                 full run (3 rounds × 15 s runs; about 8 minutes)
#   bash bench/run.sh --quick         1 round × 5 s, smaller transfers (under 2 minutes)
#   bash bench/run.sh --rounds 5 --duration 15s --conns 64,256,1024
#
# Flags (each also settable as the environment variable in brackets):
#   --quick                 [QUICK=1]            1 round, 5 s runs, 1 s warm-up, 64/32/32 MiB transfers
#   --rounds N              [ROUNDS]             interleaved rounds (default 3; quick 1)
#   --duration D            [DURATION]           measured wrk run per target, e.g. 10s (default 15s; quick 5s)
#   --warmup D              [WARMUP]             warm-up wrk run before each measured run (default 3s; quick 1s)
#   --conns LIST            [CONNS]              connection counts (default 64,256)
#   --threads N             [WRK_THREADS]        wrk threads (default 1: see harness.ts)
#   --workers N             [WORKERS]            processes per proxy: Fulcrum cluster.workers, nginx worker_processes,
#                                                HAProxy nbthread (default 1); CPU and RSS are summed over them
#   --targets LIST          [TARGETS]            subset of direct,fulcrum,nginx,haproxy
#   --no-transfers          [TRANSFERS=0]        skip the large transfers
#   --transfer-rounds N     [TRANSFER_ROUNDS]    runs of each transfer (default 1)
#   --ref REV               [FULCRUM_REF]        run Fulcrum (and the fixture backend) from a git archive of REV
#                                                (e.g. HEAD) instead of the working tree
#   --keep-tmp              [KEEP_TMP=1]         keep the temp dir (generated configs, nginx error.log)
#   also: DOWNLOAD_MIB UPLOAD_MIB ECHO_MIB STALL_SECONDS TRANSFER_TIMEOUT NGINX_KEEPALIVE WRK_TIMEOUT RESULTS_DIR WRITE_JSON=0
#
# Markdown goes to stdout, progress to stderr, raw JSON to bench/results/ (gitignored).
# Everything it starts listens on 127.0.0.1 and is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) export QUICK=1 ;;
    --rounds) need_value "$@"; export ROUNDS="$2"; shift ;;
    --duration) need_value "$@"; export DURATION="$2"; shift ;;
    --warmup) need_value "$@"; export WARMUP="$2"; shift ;;
    --conns) need_value "$@"; export CONNS="$2"; shift ;;
    --threads) need_value "$@"; export WRK_THREADS="$2"; shift ;;
    --workers) need_value "$@"; export WORKERS="$2"; shift ;;
    --targets) need_value "$@"; export TARGETS="$2"; shift ;;
    --no-transfers) export TRANSFERS=0 ;;
    --transfer-rounds) need_value "$@"; export TRANSFER_ROUNDS="$2"; shift ;;
    --ref) need_value "$@"; export FULCRUM_REF="$2"; shift ;;
    --keep-tmp) export KEEP_TMP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Tools: Debian packages for the reference proxies and the load generator.
missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]} with apt-get" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  hash -r
fi
# A package install may start the distribution's own nginx/haproxy service on
# port 80; we do not touch it (it is not ours) and use our own ports.
if ! command -v bun >/dev/null 2>&1; then
  BUN_VERSION=$(sed -n 's/.*"bun": *"\([0-9][^"]*\)".*/\1/p' package.json | head -n 1)
  echo "bench: installing bun@$BUN_VERSION from the npm registry" >&2
  npm install -g "bun@$BUN_VERSION" >/dev/null
  hash -r
fi
for tool in bun nginx haproxy wrk getconf; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool is not available" >&2; exit 1; }
done

# Raise the soft open-files limit to the hard one (never lower it): HAProxy sizes
# itself from maxconn (4096 → ~8k descriptors), and 256 client plus as many
# upstream connections must fit.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt "$(ulimit -Sn)" ]; then ulimit -Sn "$hard" 2>/dev/null || true; fi

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/fulcrum-bench.XXXXXX")
BENCH_PIDS="$BENCH_TMP/pids"
: >"$BENCH_PIDS"
export BENCH_TMP BENCH_PIDS

# Safety net: the harness stops what it started itself; if it died or was killed,
# stop every recorded PID that is still the same process (start time must match).
# Never by name.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -s "$BENCH_PIDS" ]; then
    local pid start name left=()
    while read -r pid start name; do
      [ -r "/proc/$pid/stat" ] || continue
      local now
      now=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20) || continue
      [ "$now" = "$start" ] || continue
      echo "bench: stopping leftover $name (pid $pid)" >&2
      kill -TERM "$pid" 2>/dev/null || true
      left+=("$pid:$start")
    done <"$BENCH_PIDS"
    local i entry
    for i in $(seq 1 50); do # up to 5 s
      local any=0
      for entry in "${left[@]+"${left[@]}"}"; do
        pid=${entry%%:*}
        [ -r "/proc/$pid/stat" ] && [ "$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)" = "${entry#*:}" ] && [ "$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f1)" != Z ] && any=1
      done
      [ $any -eq 0 ] && break
      sleep 0.1
    done
    for entry in "${left[@]+"${left[@]}"}"; do
      pid=${entry%%:*}
      if [ -r "/proc/$pid/stat" ] && [ "$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)" = "${entry#*:}" ] &&
        [ "$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f1)" != Z ]; then
        echo "bench: SIGKILL $pid" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
  fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "bench: kept $BENCH_TMP" >&2; else rm -rf "$BENCH_TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The harness runs in the foreground: on Ctrl-C it gets SIGINT too, stops its
# processes, and only then does this script's EXIT trap run.
bun bench/harness.ts
