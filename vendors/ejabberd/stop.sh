#!/usr/bin/env bash
# vendors/ejabberd/stop.sh RUN_DIR [TIMEOUT_SECONDS]
# Stop what start.sh runs for RUN_DIR: SIGTERM to the start.sh PID in RUN_DIR/start.pid
# (it forwards the signal to ejabberd and the DNS responder by PID and waits up to 8 s
# for them), wait up to TIMEOUT (default 10 s), then SIGKILL start.sh and, if still
# there, the PIDs in RUN_DIR/ejabberd.pid and RUN_DIR/dns.pid. Only signals a PID whose
# command line is still what we started (start.sh, the erl node imfed-ej-*, `imfed dns`). Idempotent: no pid
# files or dead processes = success.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 RUN_DIR [TIMEOUT_SECONDS]" >&2; exit 2
fi
RUN_DIR=$1
TIMEOUT=${2:-10}

# alive PID PATTERN: running (not a zombie) and its command line contains PATTERN. An
# empty cmdline is re-read: it reads empty for an instant while a process execs.
alive() {
  local st cmd
  for _ in 1 2 3 4 5; do
    st=$(sed 's/^.*) //' 2>/dev/null <"/proc/$1/stat" | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ] || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
    if [ -n "$cmd" ]; then [[ "$cmd" == *$2* ]]; return; fi
    sleep 0.02
  done
  return 1
}
pid_in() { [ -s "$RUN_DIR/$1" ] && tr -dc '0-9' <"$RUN_DIR/$1" || true; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

SUP=$(pid_in start.pid) ERL=$(pid_in ejabberd.pid) DNS=$(pid_in dns.pid)
end=$(( $(now_ms) + TIMEOUT * 1000 ))
if [ -n "$SUP" ] && alive "$SUP" start.sh; then
  kill -TERM "$SUP" 2>/dev/null || true
  while alive "$SUP" start.sh && [ "$(now_ms)" -lt "$end" ]; do sleep 0.05; done
  if alive "$SUP" start.sh; then
    echo "ejabberd/stop: start.sh pid $SUP ignored SIGTERM for ${TIMEOUT}s, sending SIGKILL" >&2
    kill -KILL "$SUP" 2>/dev/null || true
  fi
fi
# Children left behind (start.sh killed, or never reached its trap).
for spec in "$ERL:imfed-ej-" "$DNS:dns --listen"; do
  pid=${spec%%:*} pat=${spec#*:}
  [ -n "$pid" ] && alive "$pid" "$pat" || continue
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do alive "$pid" "$pat" || break; sleep 0.05; done
  if alive "$pid" "$pat"; then kill -KILL "$pid" 2>/dev/null || true; fi
done
rm -f "$RUN_DIR/start.pid"
