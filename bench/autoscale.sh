#!/usr/bin/env bash
# Fulcrum autoscaling scenario: a stepped load profile against managed instances of
# examples/backend.ts, with a per-second table, a text chart and a summary. See
# bench/README.md ("Autoscaling scenario").
#
#   bash bench/autoscale.sh                               20 s × 2 clients, 30 s × 30, 30 s × 2 (about 1.5 minutes)
#   bash bench/autoscale.sh --high-clients 60 --work-ms 200
#   bash bench/autoscale.sh --profile 20:2,30:30,30:2,30:0
#   bash bench/autoscale.sh --compare                     autoscaled vs fixed max vs fixed min (about 6 minutes)
#
# --compare [COMPARE=1] runs the same low → high → low trace three times: autoscaled
# (min..max), fixed at max, fixed at min, against instances that serve at most
# --concurrency requests at once; then a table side by side and one pass/fail line
# per target. Its defaults: 15 s × 4 clients, 40 s × 40, 60 s × 4; min 1, max 10,
# concurrency 4; and Fulcrum's own defaults for every scaling, health and slowStart
# setting (only the ones you set below are written into the config).
#
# Flags (each also settable as the environment variable in brackets):
#   --low-clients N         [LOW_CLIENTS]          clients in the low phases (default 2)
#   --high-clients N        [HIGH_CLIENTS]         clients in the high phase (default 30)
#   --low1 S                [LOW1_SECONDS]         first low phase, seconds (default 20)
#   --high S                [HIGH_SECONDS]         high phase, seconds (default 30)
#   --low2 S                [LOW2_SECONDS]         second low phase, seconds (default 30)
#   --profile LIST          [PROFILE]              any profile instead: seconds:clients,... (overrides the four above)
#   --work-ms N             [WORK_MS]              each request is GET /work?ms=N (default 100)
#   --concurrency N         [CONCURRENCY]          instances run examples/backend.ts --concurrency N (default 0 = no limit; 4 with --compare)
#   --min N / --max N       [MIN_INSTANCES/MAX_INSTANCES]  instance bounds (default 1 / 6)
#   --request-timeout MS    [REQUEST_TIMEOUT_MS]   client deadline per request (default 10000)
#   --keep-tmp              [KEEP_TMP=1]           keep the temp dir (config, Fulcrum's state file)
#   --json FILE             [RAW_JSON]             also write raw data (per-second latencies, polls, Fulcrum's log)
#   scaling knobs, in ms unless said: CHECK_INTERVAL (1000) STABLE_WINDOW (10000) PANIC_WINDOW (1000)
#   IDLE_TIMEOUT (5000) COOLDOWN (3000) SCALE_UP_THRESHOLD (3) SCALE_DOWN_THRESHOLD (0.5)
#   SLOW_START (1000) HEALTH_INTERVAL (1000); also POLL_MS (500) STOP_GRACE_MS (20000).
#   With --compare these are unset unless you set them (Fulcrum's defaults apply).
#
# The report goes to stdout, progress to stderr. Everything listens on 127.0.0.1
# and is stopped by PID on exit (also on Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "autoscale.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --low-clients) need_value "$@"; export LOW_CLIENTS="$2"; shift ;;
    --high-clients) need_value "$@"; export HIGH_CLIENTS="$2"; shift ;;
    --low1) need_value "$@"; export LOW1_SECONDS="$2"; shift ;;
    --high) need_value "$@"; export HIGH_SECONDS="$2"; shift ;;
    --low2) need_value "$@"; export LOW2_SECONDS="$2"; shift ;;
    --profile) need_value "$@"; export PROFILE="$2"; shift ;;
    --work-ms) need_value "$@"; export WORK_MS="$2"; shift ;;
    --concurrency) need_value "$@"; export CONCURRENCY="$2"; shift ;;
    --compare) export COMPARE=1 ;;
    --min) need_value "$@"; export MIN_INSTANCES="$2"; shift ;;
    --max) need_value "$@"; export MAX_INSTANCES="$2"; shift ;;
    --request-timeout) need_value "$@"; export REQUEST_TIMEOUT_MS="$2"; shift ;;
    --keep-tmp) export KEEP_TMP=1 ;;
    --json) need_value "$@"; export RAW_JSON="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "autoscale.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
command -v bun >/dev/null 2>&1 || { echo "autoscale.sh: bun is not available" >&2; exit 1; }

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/fulcrum-autoscale.XXXXXX")
BENCH_PIDS="$BENCH_TMP/pids"
: >"$BENCH_PIDS"
export BENCH_TMP BENCH_PIDS

# Safety net: autoscale.ts stops Fulcrum itself (which stops its instances); if it
# died or was killed, stop every recorded PID that is still the same process
# (start time must match): SIGTERM, up to 5 s, then SIGKILL. Never by name.
same() { # PID START: still that process (start time matches) and not a zombie
  local s
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$(echo "$s" | cut -d' ' -f20)" = "$2" ] && [ "$(echo "$s" | cut -d' ' -f1)" != Z ]
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid start name left=() i entry any
  while read -r pid start name; do
    if same "$pid" "$start"; then
      echo "autoscale.sh: stopping leftover $name (pid $pid)" >&2
      kill -TERM "$pid" 2>/dev/null || true
      left+=("$pid:$start")
    fi
  done <"$BENCH_PIDS"
  for i in $(seq 1 50); do
    any=0
    for entry in "${left[@]+"${left[@]}"}"; do same "${entry%%:*}" "${entry#*:}" && any=1; done
    [ $any -eq 0 ] && break
    sleep 0.1
  done
  for entry in "${left[@]+"${left[@]}"}"; do
    if same "${entry%%:*}" "${entry#*:}"; then
      echo "autoscale.sh: SIGKILL ${entry%%:*}" >&2
      kill -KILL "${entry%%:*}" 2>/dev/null || true
    fi
  done
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "autoscale.sh: kept $BENCH_TMP" >&2; else rm -rf "$BENCH_TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# In the foreground: on Ctrl-C it gets SIGINT too, stops Fulcrum, and only then
# does this script's EXIT trap run.
bun bench/autoscale.ts
