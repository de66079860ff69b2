#!/usr/bin/env bash
# Runs a command until it has used SECONDS of CPU time (user + system, all its threads), then
# stops it with SIGINT, which `plastic train` answers by saving a checkpoint and exiting.
# Equal CPU time is equal wall time on a core of one's own, and stays fair on a shared machine.
# Usage: scripts/cpu_budget.sh SECONDS command [args...]
set -euo pipefail
if [[ $# -lt 2 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS command [args...]" >&2
  exit 2
fi
budget=$1
shift
ticks=$(getconf CLK_TCK)
target=$$
# The watcher runs in the background; the command replaces this shell below, so it keeps this
# shell's process id and runs in the foreground, where SIGINT is not ignored.
(
  while kill -0 "$target" 2>/dev/null; do
    # Fields 14 and 15 of /proc/PID/stat: user and system time in clock ticks. The command's
    # name (field 2) is in parentheses and may hold spaces, so count from after its closing one.
    read -r -a stat < <(sed 's/.*) //' "/proc/$target/stat" 2>/dev/null || true)
    if [[ ${#stat[@]} -gt 12 ]] && (( (stat[11] + stat[12]) / ticks >= budget )); then
      kill -INT "$target"
      break
    fi
    sleep 1
  done
) &
exec "$@"
