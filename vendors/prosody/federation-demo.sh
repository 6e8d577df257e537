#!/usr/bin/env bash
# vendors/prosody/federation-demo.sh [RUN_ROOT]
# End-to-end proof of the Prosody vendor scripts plus the slixmpp interop
# client: two Prosody instances (pa.test, pb.test) on loopback with static
# routes to each other, accounts alice@pa.test, carol@pa.test, bob@pb.test,
# then interop/slixmpp/scenario.py
#   1. cross-domain  alice@pa.test <-> bob@pb.test (with --cold-message: the
#      first stanza crosses a brand-new s2s link, dialback included)
#   2. same-domain   alice@pa.test <-> carol@pa.test
# and a summary: readiness times, step times, RSS of both prosody processes.
# Both Prosody processes are stopped by PID on exit (also on failure).
#
# RUN_ROOT defaults to target/prosody-demo under the repo root (pa/ and pb/
# run directories, scenario JSON files). Env: IMFED_DEMO_BASE_PORT (default
# 25200; uses BASE..BASE+1 for pa and BASE+10..BASE+11 for pb),
# IMFED_PROSODY_TLS=tls for the TLS variant (one test CA in RUN_ROOT/ca for both
# instances, so their s2s links authenticate with SASL EXTERNAL; the scenario uses
# --tls required --tls-no-verify).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUN_ROOT=${1:-$ROOT/target/prosody-demo}
BASE=${IMFED_DEMO_BASE_PORT:-25200}
TLS=${IMFED_PROSODY_TLS:-plaintext}
mkdir -p "$RUN_ROOT"
RUN_ROOT=$(cd "$RUN_ROOT" && pwd)

PA=$RUN_ROOT/pa PB=$RUN_ROOT/pb
PA_C2S=$BASE PA_S2S=$((BASE + 1)) PB_C2S=$((BASE + 10)) PB_S2S=$((BASE + 11))

cleanup() {
  "$HERE/stop.sh" "$PA" || true
  "$HERE/stop.sh" "$PB" || true
}
trap cleanup EXIT

"$HERE/install.sh"
PY=$("$ROOT/interop/slixmpp/setup.sh" | tail -n 1)

# TLS mode: one test CA for both, so each authenticates the other by certificate
# (SASL EXTERNAL on s2s) instead of dialback.
ca_args=()
if [ "$TLS" = tls ]; then rm -rf "$RUN_ROOT/ca"; ca_args=(--ca-dir "$RUN_ROOT/ca"); fi

"$HERE/start.sh" --domain pa.test --run-dir "$PA" --c2s-port "$PA_C2S" --s2s-port "$PA_S2S" \
  --route "pb.test=127.0.0.1:$PB_S2S" --tls "$TLS" "${ca_args[@]}"
"$HERE/start.sh" --domain pb.test --run-dir "$PB" --c2s-port "$PB_C2S" --s2s-port "$PB_S2S" \
  --route "pa.test=127.0.0.1:$PA_S2S" --tls "$TLS" "${ca_args[@]}"

"$HERE/register.sh" "$PA" alice pa.test alice-pw
"$HERE/register.sh" "$PA" carol pa.test carol-pw
"$HERE/register.sh" "$PB" bob pb.test bob-pw

rss() { awk '/^VmRSS/ {print $2 " kB"}' "/proc/$(cat "$1/prosody.pid")/status"; }
echo "RSS after start: pa=$(rss "$PA") pb=$(rss "$PB")"

tls_args=(--tls never)
[ "$TLS" = tls ] && tls_args=(--tls required --tls-no-verify)

rc=0
echo "== cross-domain: alice@pa.test <-> bob@pb.test"
"$PY" "$ROOT/interop/slixmpp/scenario.py" "${tls_args[@]}" --cold-message --json \
  --a-jid alice@pa.test --a-password alice-pw --a-addr "127.0.0.1:$PA_C2S" \
  --b-jid bob@pb.test --b-password bob-pw --b-addr "127.0.0.1:$PB_C2S" \
  | tee "$RUN_ROOT/cross-domain.out" || rc=1
tail -n 1 "$RUN_ROOT/cross-domain.out" >"$RUN_ROOT/cross-domain.json"

echo "== same-domain: alice@pa.test <-> carol@pa.test"
"$PY" "$ROOT/interop/slixmpp/scenario.py" "${tls_args[@]}" --json \
  --a-jid alice@pa.test --a-password alice-pw --a-addr "127.0.0.1:$PA_C2S" \
  --b-jid carol@pa.test --b-password carol-pw --b-addr "127.0.0.1:$PA_C2S" \
  | tee "$RUN_ROOT/same-domain.out" || rc=1
tail -n 1 "$RUN_ROOT/same-domain.out" >"$RUN_ROOT/same-domain.json"

echo "RSS after scenarios: pa=$(rss "$PA") pb=$(rss "$PB")"
echo "ready: pa=$(cat "$PA/ready_ms") ms pb=$(cat "$PB/ready_ms") ms"
echo "s2s links in the logs:"
grep -h -E 's2s(in|out)[0-9a-f]+.*(Outgoing s2s connection|incoming s2s connection|authenticated|EXTERNAL)' \
  "$PA/prosody.log" "$PB/prosody.log" | sed 's/^/  /' | head -n 8 || true
echo "listening sockets of the two prosody processes:"
ss -ltnpH 2>/dev/null | grep -E "pid=($(cat "$PA/prosody.pid")|$(cat "$PB/prosody.pid"))," \
  | awk '{print "  " $4}' || true
exit $rc
