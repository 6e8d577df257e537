#!/usr/bin/env bash
# vendors/kamailio/start.sh — start one Kamailio 5.6 instance on loopback for imfed: registrar
# (digest auth), proxy and presence server for one SIP domain, federating with other domains'
# servers through static domain -> address routes (no DNS at all). protocols/sip/PROFILE.md is
# the contract it follows; README.md lists where Kamailio cannot.
#
# Usage:
#   vendors/kamailio/start.sh --domain ka.test --run-dir /tmp/ka --port 25300 \
#       --route kb.test=127.0.0.1:25310 [--route kc.test=127.0.0.1:25320;transport=tcp ...] \
#       [--shm MB] [--log-level debug|info|notice|warn|error] [--fr-timer MS] \
#       [--children N] [--timeout SECONDS] [--tls-port N [--ca-dir DIR]]
#   vendors/kamailio/start.sh --foreground [other flags]   # for an imfed target file
#
# Every flag has an environment-variable equivalent (flags win):
#   --domain     IMFED_KAMAILIO_DOMAIN    SIP domain served (realm, local AORs)       required
#   --run-dir    IMFED_KAMAILIO_RUN_DIR   run directory (created): kamailio.cfg, kamailio.pid,
#                                         kamailio_ctl (control socket), domain, kamailio.log
#                                         (background mode)                             required
#   --port       IMFED_KAMAILIO_PORT      the SIP port on 127.0.0.1, UDP and TCP both   required
#   --route      IMFED_KAMAILIO_ROUTES    DOMAIN=127.0.0.1:PORT[;transport=udp|tcp], repeatable;
#                                         the env var takes several separated by spaces or
#                                         commas. Requests for DOMAIN go there (the Request-URI
#                                         keeps the domain); any other non-local domain is
#                                         answered 604. Default transport: udp.
#   --shm        IMFED_KAMAILIO_SHM       shared memory in MiB (kamailio -m), default 256
#                                         (Kamailio's 64 fails with 500s under load)
#   --log-level  IMFED_KAMAILIO_LOG_LEVEL debug | info (default: one line per request) |
#                                         notice | warn | error
#   --fr-timer   IMFED_KAMAILIO_FR_TIMER  tm's fr_timer in ms: a non-INVITE request forwarded
#                                         to a hop that never answers gets 408 after it
#                                         (Kamailio's default 30000; RFC 3261 Timer F is 32 s)
#   --children   IMFED_KAMAILIO_CHILDREN  UDP workers and TCP workers, each (default 2)
#   --tls-port   IMFED_KAMAILIO_TLS_PORT  also a TLS listener on 127.0.0.1:N (tls.so, TLS 1.2+)
#                                         with a certificate for DOMAIN (EC P-256, SAN DNS only)
#                                         signed by a test CA (vendors/test-ca.sh); routes may
#                                         then use ;transport=tls (to the peer's TLS port). As a
#                                         client Kamailio verifies the peer's chain against that
#                                         CA and presents its own certificate; as a server it
#                                         verifies a client certificate when one is offered.
#   --ca-dir     IMFED_KAMAILIO_CA_DIR    where the test CA lives (ca.crt, ca.key; made if
#                                         missing, reused if present: give two instances the
#                                         same one); default RUN_DIR/certs (fresh per start)
#   --timeout    IMFED_KAMAILIO_TIMEOUT   readiness timeout in seconds (default 10)
#   --foreground IMFED_KAMAILIO_FOREGROUND=1  render the config, then exec kamailio in place
#
# Foreground mode (what an imfed target file launches): after the same checks and rendering,
# start.sh writes its own PID to RUN_DIR/kamailio.pid and execs
#   kamailio -DD -E -f RUN_DIR/kamailio.cfg -Y RUN_DIR -m SHM
# so that PID is Kamailio's main process (it forks its workers and stays in the foreground
# until SIGTERM); the log goes to stderr; no readiness polling, no READY line. Defaults are
# then also read from the harness's launch environment: IMFED_DOMAIN, IMFED_RUN_DIR,
# IMFED_C2S (= IMFED_S2S, one port), and, when no route is given at all,
# IMFED_REF_DOMAIN=IMFED_REF_SIP (over UDP) and IMFED_BLACKHOLE_DOMAIN=IMFED_BLACKHOLE_S2S
# (over TCP: the harness's listener that accepts and never answers).
#
# Background mode (default): Kamailio is started under setsid with its log in
# RUN_DIR/kamailio.log; start.sh waits until the TCP port accepts and the control socket
# exists, writes the time it took to RUN_DIR/ready_ms and prints
#   READY pid=<pid> sip=127.0.0.1:<port> (udp+tcp) ctl=RUN_DIR/kamailio_ctl
# On failure it prints the log's tail, kills what it started (by PID) and exits 1.
# Stop with stop.sh RUN_DIR; add users with register.sh RUN_DIR USER DOMAIN PASSWORD.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "kamailio/start: $*" >&2; exit 2; }

DOMAIN=${IMFED_KAMAILIO_DOMAIN:-}
RUN_DIR=${IMFED_KAMAILIO_RUN_DIR:-}
PORT=${IMFED_KAMAILIO_PORT:-}
SHM=${IMFED_KAMAILIO_SHM:-256}
LOG_LEVEL=${IMFED_KAMAILIO_LOG_LEVEL:-info}
FR_TIMER=${IMFED_KAMAILIO_FR_TIMER:-30000}
CHILDREN=${IMFED_KAMAILIO_CHILDREN:-2}
TIMEOUT=${IMFED_KAMAILIO_TIMEOUT:-10}
FOREGROUND=${IMFED_KAMAILIO_FOREGROUND:-0}
TLS_PORT=${IMFED_KAMAILIO_TLS_PORT:-}
CA_DIR=${IMFED_KAMAILIO_CA_DIR:-}
ROUTES=()
if [ -n "${IMFED_KAMAILIO_ROUTES:-}" ]; then
  read -r -a ROUTES <<<"${IMFED_KAMAILIO_ROUTES//,/ }"
fi

need() { [ $# -ge 2 ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --domain)    need "$@"; DOMAIN=$2; shift 2 ;;
    --run-dir)   need "$@"; RUN_DIR=$2; shift 2 ;;
    --port)      need "$@"; PORT=$2; shift 2 ;;
    --route)     need "$@"; ROUTES+=("$2"); shift 2 ;;
    --shm)       need "$@"; SHM=$2; shift 2 ;;
    --log-level) need "$@"; LOG_LEVEL=$2; shift 2 ;;
    --fr-timer)  need "$@"; FR_TIMER=$2; shift 2 ;;
    --children)  need "$@"; CHILDREN=$2; shift 2 ;;
    --timeout)   need "$@"; TIMEOUT=$2; shift 2 ;;
    --tls-port)  need "$@"; TLS_PORT=$2; shift 2 ;;
    --ca-dir)    need "$@"; CA_DIR=$2; shift 2 ;;
    --foreground) FOREGROUND=1; shift ;;
    -h|--help)   sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

case "$FOREGROUND" in 1|true|yes) FOREGROUND=1 ;; 0|false|no|"") FOREGROUND=0 ;;
  *) die "IMFED_KAMAILIO_FOREGROUND must be 1 or 0" ;; esac

# port_of NAME HOST:PORT: the port, checking the host is 127.0.0.1.
port_of() {
  [[ "$2" =~ ^127\.0\.0\.1:([0-9]+)$ ]] || die "$1=$2: want 127.0.0.1:PORT"
  echo "${BASH_REMATCH[1]}"
}
if [ "$FOREGROUND" = 1 ]; then
  # Defaults from the imfed harness's launch environment (harness/src/runner/env.rs).
  [ -n "$DOMAIN" ] || DOMAIN=${IMFED_DOMAIN:-}
  [ -n "$RUN_DIR" ] || RUN_DIR=${IMFED_RUN_DIR:-}
  if [ -z "$PORT" ] && [ -n "${IMFED_C2S:-}" ]; then
    PORT=$(port_of IMFED_C2S "$IMFED_C2S")
    if [ -n "${IMFED_S2S:-}" ] && [ "$(port_of IMFED_S2S "$IMFED_S2S")" != "$PORT" ]; then
      die "IMFED_C2S and IMFED_S2S differ: Kamailio has one SIP port for both"
    fi
  fi
  if [ "${#ROUTES[@]}" = 0 ]; then
    if [ -n "${IMFED_REF_DOMAIN:-}" ] && [ -n "${IMFED_REF_SIP:-}" ]; then
      ROUTES+=("$IMFED_REF_DOMAIN=$IMFED_REF_SIP;transport=udp")
    fi
    if [ -n "${IMFED_BLACKHOLE_DOMAIN:-}" ] && [ -n "${IMFED_BLACKHOLE_S2S:-}" ]; then
      ROUTES+=("$IMFED_BLACKHOLE_DOMAIN=$IMFED_BLACKHOLE_S2S;transport=tcp")
    fi
  fi
fi

[ -n "$DOMAIN" ] || die "--domain is required"
[ -n "$RUN_DIR" ] || die "--run-dir is required"
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
  die "--port must be a port number"
fi
[[ "$DOMAIN" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] || die "bad domain: $DOMAIN"
DOMAIN=${DOMAIN,,}
if ! [[ "$SHM" =~ ^[0-9]+$ ]] || [ "$SHM" -lt 16 ]; then die "--shm must be MiB (>= 16)"; fi
if ! [[ "$FR_TIMER" =~ ^[0-9]+$ ]] || [ "$FR_TIMER" -lt 100 ]; then
  die "--fr-timer must be ms (>= 100)"
fi
[[ "$CHILDREN" =~ ^[1-9][0-9]?$ ]] || die "--children must be 1..99"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds"
if [ -n "$TLS_PORT" ]; then
  if ! [[ "$TLS_PORT" =~ ^[0-9]+$ ]] || [ "$TLS_PORT" -lt 1 ] || [ "$TLS_PORT" -gt 65535 ]; then
    die "--tls-port must be a port number"
  fi
  [ "$TLS_PORT" != "$PORT" ] || die "--tls-port must differ from --port"
  command -v openssl >/dev/null || die "--tls-port needs openssl (for the test certificates)"
fi
case "$LOG_LEVEL" in
  debug) DEBUG=3 ;; info) DEBUG=2 ;; notice) DEBUG=1 ;; warn) DEBUG=0 ;; error) DEBUG=-1 ;;
  *) die "bad --log-level: $LOG_LEVEL" ;;
esac
command -v kamailio >/dev/null || die "kamailio not installed (run vendors/kamailio/install.sh)"

mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
[[ "$RUN_DIR" =~ ^[A-Za-z0-9_./+-]+$ ]] || die "run directory path has characters the config cannot quote: $RUN_DIR"
# sockaddr_un holds 108 bytes: the control socket's path must fit.
[ "${#RUN_DIR}" -le 90 ] || die "run directory path too long for a unix socket: $RUN_DIR"
CFG=$RUN_DIR/kamailio.cfg
PIDFILE=$RUN_DIR/kamailio.pid
CTL=$RUN_DIR/kamailio_ctl
LOG=$RUN_DIR/kamailio.log

# running PID: exists and is not a zombie.
running() {
  local st
  st=$(sed 's/^.*) //' 2>/dev/null <"/proc/$1/stat" | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}
# alive PID: running and a kamailio process (for PIDs from an old pid file only:
# /proc/PID/cmdline reads empty for an instant while a process execs).
alive() {
  local cmd
  running "$1" || return 1
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
  [[ "$cmd" == *kamailio* ]]
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -s "$PIDFILE" ]; then
  old=$(tr -dc '0-9' <"$PIDFILE")
  if [ -n "$old" ] && alive "$old"; then
    die "a kamailio (pid $old) is still running for $RUN_DIR: stop it with stop.sh first"
  fi
  rm -f "$PIDFILE"
fi
port_open "$PORT" && die "port 127.0.0.1:$PORT (tcp) is already in use"
if [ -n "$TLS_PORT" ] && port_open "$TLS_PORT"; then die "port 127.0.0.1:$TLS_PORT is already in use"; fi

# ---- render the config -------------------------------------------------------
rm -f "$CTL" "$LOG" "$RUN_DIR/ready_ms" "$RUN_DIR/tls.cfg"
routes_cfg=""
seen=" $DOMAIN "
for r in "${ROUTES[@]}"; do
  [ -n "$r" ] || continue
  [[ "$r" =~ ^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)=127\.0\.0\.1:([0-9]+)(\;transport=(udp|tcp|tls|UDP|TCP|TLS))?$ ]] \
    || die "bad --route '$r' (want DOMAIN=127.0.0.1:PORT[;transport=udp|tcp|tls])"
  rd=${BASH_REMATCH[1],,} rp=${BASH_REMATCH[3]} rt=${BASH_REMATCH[5],,}
  [ -n "$rt" ] || rt=udp
  if [ "$rt" = tls ] && [ -z "$TLS_PORT" ]; then die "route '$r' over TLS needs --tls-port"; fi
  if [ "$rp" -lt 1 ] || [ "$rp" -gt 65535 ]; then die "bad port in --route '$r'"; fi
  [ "$rd" != "$DOMAIN" ] || die "route for our own domain $DOMAIN"
  [[ "$seen" != *" $rd "* ]] || die "two routes for $rd"
  seen+="$rd "
  routes_cfg+="	if (\$var(rd) == \"$rd\") { \$var(du) = \"sip:127.0.0.1:$rp;transport=$rt\"; \$var(route) = 1; }"$'\n'
done
[ -n "$routes_cfg" ] || routes_cfg=$'\t# (no static routes: every other domain is answered 604)\n'

tpl=$(<"$HERE/kamailio.cfg.template")
tpl=${tpl//@@RUN_DIR@@/$RUN_DIR}
tpl=${tpl//@@PORT@@/$PORT}
tpl=${tpl//@@LOG_LEVEL@@/$DEBUG}
tpl=${tpl//@@CHILDREN@@/$CHILDREN}
tpl=${tpl//@@FR_TIMER@@/$FR_TIMER}
tpl=${tpl//@@ROUTES@@/${routes_cfg%$'\n'}}
# TLS (optional): test certificates (vendors/test-ca.sh) and the tls module's own config file.
tls_listen="# (no TLS listener: start.sh --tls-port N adds one)"$'\n'"enable_tls=no"
tls_load="" tls_param="" tls_reqinit=""
if [ -n "$TLS_PORT" ]; then
  CAFILE="" CERT="" KEY=""
  # shellcheck source=../test-ca.sh
  . "$HERE/../test-ca.sh"
  make_test_certs "${CA_DIR:-$RUN_DIR/certs}" "$RUN_DIR/certs" "$DOMAIN"
  for f in "$CAFILE" "$CERT" "$KEY"; do
    [[ "$f" =~ ^[A-Za-z0-9_./+-]+$ ]] || die "certificate path the config cannot quote: $f"
  done
  cat >"$RUN_DIR/tls.cfg" <<EOF_TLS
# rendered by vendors/kamailio/start.sh
[server:default]
method = TLSv1.2+
verify_certificate = yes
require_certificate = no
private_key = $KEY
certificate = $CERT
ca_list = $CAFILE

[client:default]
method = TLSv1.2+
verify_certificate = yes
require_certificate = yes
private_key = $KEY
certificate = $CERT
ca_list = $CAFILE
EOF_TLS
  tls_listen="enable_tls=yes"$'\n'"listen=tls:127.0.0.1:$TLS_PORT"
  tls_load='loadmodule "tls.so"'
  # shellcheck disable=SC2016  # Kamailio pseudo-variables, not shell ones
  tls_reqinit='	if ($proto == "tls") xlog("L_INFO", "TLS peer of $si:$sp: verified=$tls_peer_verified subject CN=$tls_peer_subject_cn\n");'
  tls_param="modparam(\"tls\", \"config\", \"$RUN_DIR/tls.cfg\")"$'\n'"modparam(\"tls\", \"connection_timeout\", 3605)"
fi
tpl=${tpl//@@TLS_LISTEN@@/$tls_listen}
tpl=${tpl//@@TLS_LOADMODULE@@/$tls_load}
tpl=${tpl//@@TLS_MODPARAM@@/$tls_param}
tpl=${tpl//@@TLS_REQINIT@@/$tls_reqinit}
tpl=${tpl//@@DOMAIN@@/$DOMAIN}
if [[ "$tpl" == *@@* ]]; then die "template placeholder left unfilled: $(grep -o '@@[A-Z_]*@@' <<<"$tpl" | head -1)"; fi
printf '%s\n' "$tpl" >"$CFG"
echo "$DOMAIN" >"$RUN_DIR/domain"

ARGS=(-DD -E -f "$CFG" -Y "$RUN_DIR" -m "$SHM")

# ---- foreground: become kamailio -----------------------------------------------
if [ "$FOREGROUND" = 1 ]; then
  echo "$$" >"$PIDFILE"
  exec kamailio "${ARGS[@]}"
fi

# ---- start and wait ----------------------------------------------------------
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

t0=$(now_ms)
# In a non-interactive shell the background child is not a process-group leader, so
# setsid execs in place: $! is kamailio's own PID.
setsid kamailio "${ARGS[@]}" </dev/null >"$LOG" 2>&1 &
PID=$!
echo "$PID" >"$PIDFILE"

fail() {
  echo "kamailio/start: FAILED: $*" >&2
  if running "$PID"; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 100); do running "$PID" || break; sleep 0.05; done
    if running "$PID"; then kill -KILL "$PID" 2>/dev/null || true; fi
  fi
  rm -f "$PIDFILE"
  if [ -s "$LOG" ]; then echo "---- tail of $LOG ----" >&2; tail -n 30 "$LOG" >&2
  else echo "---- $LOG: empty or missing ----" >&2; fi
  exit 1
}

deadline=$(( t0 + TIMEOUT * 1000 ))
while :; do
  if ! running "$PID"; then
    st=0; wait "$PID" 2>/dev/null || st=$?
    why="exit status $st"; [ "$st" -gt 128 ] && why="killed by signal $((st - 128))"
    fail "kamailio (pid $PID) exited during startup ($why)"
  fi
  if [ -S "$CTL" ] && port_open "$PORT" && { [ -z "$TLS_PORT" ] || port_open "$TLS_PORT"; }; then
    break
  fi
  [ "$(now_ms)" -lt "$deadline" ] || fail "not ready after ${TIMEOUT}s"
  sleep 0.01
done
ready_ms=$(( $(now_ms) - t0 ))
echo "$ready_ms" >"$RUN_DIR/ready_ms"
tls_note=""
[ -z "$TLS_PORT" ] || tls_note=" sips=127.0.0.1:$TLS_PORT (tls) ca=$CAFILE"
echo "READY pid=$PID sip=127.0.0.1:$PORT (udp+tcp)$tls_note ctl=$CTL"
