#!/usr/bin/env bash
# vendors/kamailio/stop.sh RUN_DIR [TIMEOUT_SECONDS]
# Stop the Kamailio started by start.sh for RUN_DIR, by the PID in RUN_DIR/kamailio.pid (its
# main process; on SIGTERM it stops its workers and exits): SIGTERM, wait up to TIMEOUT
# (default 10 s), then SIGKILL. Only signals that PID, and only if it is still a kamailio
# process. Idempotent: no pid file or a dead process is success.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 RUN_DIR [TIMEOUT_SECONDS]" >&2; exit 2
fi
PIDFILE=$1/kamailio.pid
TIMEOUT=${2:-10}
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || { echo "kamailio/stop: TIMEOUT must be whole seconds" >&2; exit 2; }
[ -s "$PIDFILE" ] || exit 0
PID=$(tr -dc '0-9' <"$PIDFILE")
[ -n "$PID" ] || { rm -f "$PIDFILE"; exit 0; }

# alive: PID is running (not a zombie) and is a kamailio process. An empty cmdline is
# re-read: it reads empty for an instant while a process execs.
alive() {
  local st cmd
  for _ in 1 2 3 4 5; do
    st=$(sed 's/^.*) //' 2>/dev/null <"/proc/$PID/stat" | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ] || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$PID/cmdline") || return 1
    if [ -n "$cmd" ]; then [[ "$cmd" == *kamailio* ]]; return; fi
    sleep 0.02
  done
  return 1
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

if alive; then
  kill -TERM "$PID" 2>/dev/null || true
  end=$(( $(now_ms) + TIMEOUT * 1000 ))
  while alive && [ "$(now_ms)" -lt "$end" ]; do sleep 0.02; done
  if alive; then
    echo "kamailio/stop: pid $PID ignored SIGTERM for ${TIMEOUT}s, sending SIGKILL" >&2
    kill -KILL "$PID" 2>/dev/null || true
    for _ in $(seq 1 100); do alive || break; sleep 0.05; done
    if alive; then echo "kamailio/stop: pid $PID still alive" >&2; exit 1; fi
  fi
fi
rm -f "$PIDFILE" "$1/kamailio_ctl"
