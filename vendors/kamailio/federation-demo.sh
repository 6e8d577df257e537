#!/usr/bin/env bash
# vendors/kamailio/federation-demo.sh [RUN_ROOT]
# End-to-end proof of the Kamailio vendor scripts: two Kamailio instances (ka.test, kb.test)
# on loopback with static routes to each other (UDP between the servers by default), users
# alice, carol, erin on ka.test and bob, dave, erin on kb.test (password "<user>-pw"), then
# sipprobe.py (Python 3 standard library) drives PROFILE.md's flows over UDP and TCP and
# records every answer: registration with digest, cross-domain and same-domain MESSAGE,
# PUBLISH (open/closed, SIP-If-Match refresh, two publications, removal), cross-domain
# SUBSCRIBE with NOTIFYs, in-dialog re-SUBSCRIBE and un-SUBSCRIBE, the error answers
# (404/480/604/483/413, malformed input over UDP and TCP), short leases.
# Both Kamailio processes are stopped by PID on exit (also on failure).
#
# RUN_ROOT defaults to target/kamailio-demo under the repo root (ka/ and kb/ run directories,
# probe.json with every answer, probe.out). Env:
#   IMFED_DEMO_BASE_PORT  default 25300: ka.test on BASE, kb.test on BASE+10, a dead route
#                         (nothing listens) on BASE+20, a silent UDP peer on BASE+21
#   IMFED_DEMO_S2S        udp (default) | tcp | tls: transport of the server-to-server routes;
#                         tls adds TLS listeners on BASE+1 and BASE+11 with certificates from one
#                         test CA (RUN_ROOT/ca) and a user agent over TLS at ka.test
#   IMFED_DEMO_SKIP_SLOW  1: skip the lease-expiry steps (about 15 s)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUN_ROOT=${1:-$ROOT/target/kamailio-demo}
BASE=${IMFED_DEMO_BASE_PORT:-25300}
S2S=${IMFED_DEMO_S2S:-udp}
mkdir -p "$RUN_ROOT"
RUN_ROOT=$(cd "$RUN_ROOT" && pwd)
KA=$RUN_ROOT/ka KB=$RUN_ROOT/kb
KA_PORT=$BASE KB_PORT=$((BASE + 10)) DEAD_PORT=$((BASE + 20)) BLACK_PORT=$((BASE + 21))
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

BLACK_PID=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  "$HERE/stop.sh" "$KA" || true
  "$HERE/stop.sh" "$KB" || true
  if [ -n "$BLACK_PID" ]; then kill "$BLACK_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

"$HERE/install.sh" >/dev/null

# A UDP peer that reads and never answers (blackhole.test's kind of server), by PID.
"$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    s.recvfrom(65535)
' "$BLACK_PORT" &
BLACK_PID=$!

common=(--fr-timer 5000)
KA_PEER=$KA_PORT KB_PEER=$KB_PORT
ka_tls=() kb_tls=() probe_tls=()
case "$S2S" in
  udp|tcp) ;;
  tls)
    rm -rf "$RUN_ROOT/ca"
    KA_PEER=$((BASE + 1)) KB_PEER=$((BASE + 11))
    ka_tls=(--tls-port "$KA_PEER" --ca-dir "$RUN_ROOT/ca")
    kb_tls=(--tls-port "$KB_PEER" --ca-dir "$RUN_ROOT/ca")
    probe_tls=(--a-tls "127.0.0.1:$KA_PEER" --cafile "$RUN_ROOT/ca/ca.crt")
    ;;
  *) echo "IMFED_DEMO_S2S must be udp, tcp or tls" >&2; exit 2 ;;
esac
t0=$(date +%s%N)
"$HERE/start.sh" --domain ka.test --run-dir "$KA" --port "$KA_PORT" "${common[@]}" "${ka_tls[@]}" \
  --route "kb.test=127.0.0.1:$KB_PEER;transport=$S2S" \
  --route "dead.test=127.0.0.1:$DEAD_PORT;transport=tcp" \
  --route "black.test=127.0.0.1:$BLACK_PORT;transport=udp"
"$HERE/start.sh" --domain kb.test --run-dir "$KB" --port "$KB_PORT" "${common[@]}" "${kb_tls[@]}" \
  --route "ka.test=127.0.0.1:$KA_PEER;transport=$S2S"
t1=$(date +%s%N)

for u in alice carol erin; do "$HERE/register.sh" "$KA" "$u" ka.test "$u-pw"; done
for u in bob dave erin; do "$HERE/register.sh" "$KB" "$u" kb.test "$u-pw"; done
t2=$(date +%s%N)

pss() { # total PSS (kB) of a kamailio main process and its children
  local main=$1 total=0 p v
  for p in "$main" $(cat "/proc/$main/task/"*/children 2>/dev/null); do
    v=$(awk '/^Pss:/ {s += $2} END {print s + 0}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    total=$((total + v))
  done
  echo "$total kB"
}
nproc_of() { echo $(( $(wc -w <"/proc/$1/task/$1/children") + 1 )); }
KA_PID=$(cat "$KA/kamailio.pid") KB_PID=$(cat "$KB/kamailio.pid")
echo "started: ka pid $KA_PID ready in $(cat "$KA/ready_ms") ms, kb pid $KB_PID ready in $(cat "$KB/ready_ms") ms" \
  "(both: $(( (t1 - t0) / 1000000 )) ms; 6 users provisioned in $(( (t2 - t1) / 1000000 )) ms)"
echo "processes: ka $(nproc_of "$KA_PID"), kb $(nproc_of "$KB_PID"); PSS after start: ka $(pss "$KA_PID"), kb $(pss "$KB_PID")"

slow=()
[ "${IMFED_DEMO_SKIP_SLOW:-0}" = 1 ] && slow=(--skip-slow)
rc=0
"$PY" "$HERE/sipprobe.py" --a-domain ka.test --a-addr "127.0.0.1:$KA_PORT" \
  --b-domain kb.test --b-addr "127.0.0.1:$KB_PORT" \
  --dead-domain dead.test --black-domain black.test \
  --json "$RUN_ROOT/probe.json" "${slow[@]}" "${probe_tls[@]}" | tee "$RUN_ROOT/probe.out" || rc=1

echo "PSS after the probe: ka $(pss "$KA_PID"), kb $(pss "$KB_PID")"
echo "sockets the two instances listen on (ss):"
for inst in "ka:$KA_PID" "kb:$KB_PID"; do
  name=${inst%%:*} main=${inst#*:}
  pids="$main $(cat "/proc/$main/task/"*/children 2>/dev/null)"
  pat="pid=($(tr -s ' \n' '|' <<<"$pids" | sed 's/^|//; s/|$//')),"
  ss -lnuptH 2>/dev/null | grep -E "$pat" | awk -v n="$name" '{print "  " n " " $1 " " $5}' | sort -u || true
done
s0=$(date +%s%N)
"$HERE/stop.sh" "$KA"; "$HERE/stop.sh" "$KB"
echo "stopped both in $(( ($(date +%s%N) - s0) / 1000000 )) ms"
exit $rc
