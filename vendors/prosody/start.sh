#!/usr/bin/env bash
# vendors/prosody/start.sh — start one Prosody 0.12 instance on loopback for
# imfed, federating with other servers through static domain->address routes.
#
# Usage:
#   vendors/prosody/start.sh --domain pa.test --run-dir /tmp/pa \
#       --c2s-port 40222 --s2s-port 40269 \
#       --route pb.test=127.0.0.1:40369 [--route other.test=127.0.0.1:N ...] \
#       [--tls plaintext|tls] [--cert FILE --key FILE] \
#       [--log-level debug|info|warn] [--offline 1|0] [--timeout SECONDS] [--nagle on|off]
#
# Every flag has an environment-variable equivalent (flags win); each
# IMFED_PROSODY_X may also be given as PROSODY_X (IMFED_PROSODY_X wins):
#   --domain     IMFED_PROSODY_DOMAIN     XMPP domain served (VirtualHost)   required
#   --run-dir    IMFED_PROSODY_RUN_DIR    run directory (created)            required
#   --c2s-port   IMFED_PROSODY_C2S_PORT   client port on 127.0.0.1          required
#   --s2s-port   IMFED_PROSODY_S2S_PORT   server port on 127.0.0.1          required
#   --route      IMFED_PROSODY_ROUTES     DOMAIN=HOST:PORT, repeatable; the env var takes
#                                         several separated by spaces/commas. HOST must be
#                                         an IP literal. Unlisted domains are unreachable.
#   --tls        IMFED_PROSODY_TLS        plaintext (default) | tls
#                  plaintext: no mod_tls; c2s/s2s unencrypted; PLAIN allowed unencrypted.
#                  tls (VARIANT, lightly tested): mod_tls, STARTTLS required on c2s
#                     and s2s, PLAIN only after TLS; s2s peers still authenticated by
#                     dialback (s2s_secure_auth = false). Certificate from --cert/--key,
#                     else a self-signed one for DOMAIN is generated in RUN_DIR/certs.
#   --cert/--key IMFED_PROSODY_CERT / IMFED_PROSODY_KEY   PEM files (tls mode only)
#   --log-level  IMFED_PROSODY_LOG_LEVEL  minimum level in RUN_DIR/prosody.log: info (default;
#                                         debug logs every stanza, which slows Prosody down)
#   --offline    IMFED_PROSODY_OFFLINE    1 (default, Prosody's default: mod_offline stores
#                                         messages to offline users) | 0 (modules_disabled:
#                                         such messages bounce with service-unavailable)
#   --timeout    IMFED_PROSODY_TIMEOUT    readiness timeout in seconds (default 10)
#   --nagle      IMFED_PROSODY_NAGLE      off (default: TCP_NODELAY on every socket) | on
#                                         (Prosody's own default; ~40 ms stalls, see template)
#
# What it does: refuses to start if a Prosody recorded in RUN_DIR/prosody.pid is
# still running or a port is already taken; wipes RUN_DIR/data (fresh accounts,
# rosters, offline messages), RUN_DIR/prosody.log and RUN_DIR/prosody.out; renders
# prosody.cfg.lua.template to RUN_DIR/prosody.cfg.lua; starts
# `prosody -F --config RUN_DIR/prosody.cfg.lua` in the background in its own
# session (setsid), writes its PID to RUN_DIR/prosody.pid; polls both ports every
# 20 ms until they accept a TCP connection (at most --timeout seconds).
#
# Success: prints exactly one line on stdout and exits 0, Prosody keeps running:
#   READY pid=<pid> c2s=127.0.0.1:<port> s2s=127.0.0.1:<port>
# (the time to readiness in ms is written to RUN_DIR/ready_ms).
# Failure: prints the tail of Prosody's log to stderr, kills the started PID,
# exits 1 (2: bad arguments, port already taken, or a Prosody already running
# for RUN_DIR).
#
# Files in RUN_DIR: prosody.cfg.lua, prosody.pid, prosody.log (Prosody's log),
# prosody.out (its stdout/stderr), data/, certs/ (tls mode, generated), ready_ms.
# Stop with vendors/prosody/stop.sh RUN_DIR; add accounts with register.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

DOMAIN=${IMFED_PROSODY_DOMAIN:-${PROSODY_DOMAIN:-}}
RUN_DIR=${IMFED_PROSODY_RUN_DIR:-${PROSODY_RUN_DIR:-}}
C2S_PORT=${IMFED_PROSODY_C2S_PORT:-${PROSODY_C2S_PORT:-}}
S2S_PORT=${IMFED_PROSODY_S2S_PORT:-${PROSODY_S2S_PORT:-}}
TLS_MODE=${IMFED_PROSODY_TLS:-${PROSODY_TLS:-plaintext}}
CERT=${IMFED_PROSODY_CERT:-${PROSODY_CERT:-}}
KEY=${IMFED_PROSODY_KEY:-${PROSODY_KEY:-}}
LOG_LEVEL=${IMFED_PROSODY_LOG_LEVEL:-${PROSODY_LOG_LEVEL:-info}}
OFFLINE=${IMFED_PROSODY_OFFLINE:-${PROSODY_OFFLINE:-1}}
TIMEOUT=${IMFED_PROSODY_TIMEOUT:-${PROSODY_TIMEOUT:-10}}
NAGLE=${IMFED_PROSODY_NAGLE:-${PROSODY_NAGLE:-off}}
ROUTES=()
ROUTES_ENV=${IMFED_PROSODY_ROUTES:-${PROSODY_ROUTES:-}}
for r in ${ROUTES_ENV//,/ }; do ROUTES+=("$r"); done

die() { echo "prosody/start: $*" >&2; exit 2; }
need() { [ $# -ge 2 ] || die "$1 needs a value"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --domain)    need "$@"; DOMAIN=$2; shift 2 ;;
    --run-dir)   need "$@"; RUN_DIR=$2; shift 2 ;;
    --c2s-port)  need "$@"; C2S_PORT=$2; shift 2 ;;
    --s2s-port)  need "$@"; S2S_PORT=$2; shift 2 ;;
    --route)     need "$@"; ROUTES+=("$2"); shift 2 ;;
    --tls)       need "$@"; TLS_MODE=$2; shift 2 ;;
    --cert)      need "$@"; CERT=$2; shift 2 ;;
    --key)       need "$@"; KEY=$2; shift 2 ;;
    --log-level) need "$@"; LOG_LEVEL=$2; shift 2 ;;
    --offline)   need "$@"; OFFLINE=$2; shift 2 ;;
    --timeout)   need "$@"; TIMEOUT=$2; shift 2 ;;
    --nagle)     need "$@"; NAGLE=$2; shift 2 ;;
    -h|--help)   sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

[ -n "$DOMAIN" ] || die "--domain is required"
[ -n "$RUN_DIR" ] || die "--run-dir is required"
[[ "$C2S_PORT" =~ ^[0-9]+$ ]] || die "--c2s-port must be a number"
[[ "$S2S_PORT" =~ ^[0-9]+$ ]] || die "--s2s-port must be a number"
[ "$C2S_PORT" != "$S2S_PORT" ] || die "c2s and s2s ports must differ"
[[ "$DOMAIN" =~ ^[A-Za-z0-9.-]+$ ]] || die "bad domain: $DOMAIN"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds"
case "$LOG_LEVEL" in debug|info|warn|error) ;; *) die "bad --log-level: $LOG_LEVEL" ;; esac
case "$OFFLINE" in 1|0) ;; *) die "--offline must be 1 or 0" ;; esac
case "$NAGLE" in on|1|true) NAGLE=true ;; off|0|false) NAGLE=false ;; *) die "--nagle must be on or off" ;; esac
command -v prosody >/dev/null || die "prosody not installed (run vendors/prosody/install.sh)"

mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
CFG=$RUN_DIR/prosody.cfg.lua
PIDFILE=$RUN_DIR/prosody.pid
LOG=$RUN_DIR/prosody.log
OUT=$RUN_DIR/prosody.out

# running PID: exists and is not a zombie.
running() {
  local st
  st=$(sed 's/^.*) //' 2>/dev/null <"/proc/$1/stat" | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}
# alive PID: running and a prosody process. Only for PIDs we did not start
# ourselves (an old pid file): /proc/PID/cmdline reads empty for an instant
# while a process execs, so it is not used for the child we are starting
# (start.sh is its parent: its PID cannot be reused until we reap it).
alive() {
  local cmd
  running "$1" || return 1
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
  [[ "$cmd" == *prosody* ]]
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -s "$PIDFILE" ]; then
  old=$(tr -dc '0-9' <"$PIDFILE")
  if [ -n "$old" ] && alive "$old"; then
    die "a prosody (pid $old) is still running for $RUN_DIR: stop it with stop.sh first"
  fi
  rm -f "$PIDFILE"
fi
for p in "$C2S_PORT" "$S2S_PORT"; do
  port_open "$p" && die "port 127.0.0.1:$p is already in use"
done

# ---- render the config -------------------------------------------------------
lua_str() { # quote as a Lua string literal
  local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"
}

routes_lua=""
for r in "${ROUTES[@]}"; do
  [[ "$r" =~ ^([A-Za-z0-9.-]+)=(\[[0-9A-Fa-f:.]+\]|[0-9.]+):([0-9]+)$ ]] \
    || die "bad --route '$r' (want DOMAIN=IP:PORT)"
  rd=${BASH_REMATCH[1]} rh=${BASH_REMATCH[2]} rp=${BASH_REMATCH[3]}
  rh=${rh#[}; rh=${rh%]}
  [ "$rd" != "$DOMAIN" ] || die "route for our own domain $DOMAIN"
  routes_lua+="	[$(lua_str "$rd")] = { host = $(lua_str "$rh"), port = $rp };"$'\n'
done

rm -rf "$RUN_DIR/data" "$LOG" "$OUT" "$RUN_DIR/ready_ms"
# certs/ always exists: Prosody indexes CONFIG_DIR/certs at startup and logs an
# error if it is missing (harmless, but noisy).
mkdir -p "$RUN_DIR/data" "$RUN_DIR/certs"

case "$TLS_MODE" in
  plaintext)
    tls_modules=""
    c2s_req=false s2s_req=false plain_unenc=true
    tls_global="-- (plaintext mode: no certificates, mod_tls not loaded)"
    tls_host=""
    ;;
  tls)
    # TLS VARIANT: not part of the plaintext baseline; see README.
    if [ -z "$CERT" ] || [ -z "$KEY" ]; then
      command -v openssl >/dev/null || die "tls mode needs --cert/--key or openssl"
      mkdir -p "$RUN_DIR/certs"
      CERT=$RUN_DIR/certs/$DOMAIN.crt KEY=$RUN_DIR/certs/$DOMAIN.key
      if [ ! -s "$CERT" ] || [ ! -s "$KEY" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$DOMAIN" \
          -addext "subjectAltName=DNS:$DOMAIN" -keyout "$KEY" -out "$CERT" >/dev/null 2>&1 \
          || die "openssl failed to make a self-signed certificate"
      fi
    fi
    [ -r "$CERT" ] && [ -r "$KEY" ] || die "cannot read --cert $CERT / --key $KEY"
    tls_modules='	"tls";          -- STARTTLS (tls mode)'
    c2s_req=true s2s_req=true plain_unenc=false
    ssl_tbl="{ certificate = $(lua_str "$CERT"), key = $(lua_str "$KEY") }"
    tls_global="ssl = $ssl_tbl"
    tls_host="	ssl = $ssl_tbl"
    ;;
  *) die "--tls must be plaintext or tls" ;;
esac

disabled=""
[ "$OFFLINE" = 1 ] || disabled='	"offline";      -- --offline 0'

tpl=$(<"$HERE/prosody.cfg.lua.template")
tpl=${tpl//@@DATA_DIR@@/$RUN_DIR/data}
tpl=${tpl//@@PLUGIN_DIR@@/$HERE}
tpl=${tpl//@@RUN_DIR@@/$RUN_DIR}
tpl=${tpl//@@LOG_LEVEL@@/$LOG_LEVEL}
tpl=${tpl//@@C2S_PORT@@/$C2S_PORT}
tpl=${tpl//@@S2S_PORT@@/$S2S_PORT}
tpl=${tpl//@@TLS_MODULES@@/$tls_modules}
tpl=${tpl//@@MODULES_DISABLED@@/$disabled}
tpl=${tpl//@@TLS_MODE@@/$TLS_MODE}
tpl=${tpl//@@NAGLE@@/$NAGLE}
tpl=${tpl//@@C2S_REQUIRE_ENCRYPTION@@/$c2s_req}
tpl=${tpl//@@S2S_REQUIRE_ENCRYPTION@@/$s2s_req}
tpl=${tpl//@@ALLOW_UNENCRYPTED_PLAIN@@/$plain_unenc}
tpl=${tpl//@@TLS_GLOBAL@@/$tls_global}
tpl=${tpl//@@ROUTES@@/${routes_lua%$'\n'}}
tpl=${tpl//@@DOMAIN@@/$DOMAIN}
tpl=${tpl//@@TLS_HOST@@/$tls_host}
if [[ "$tpl" == *@@* ]]; then die "template placeholder left unfilled: $(grep -o '@@[A-Z_]*@@' <<<"$tpl" | head -1)"; fi
printf '%s\n' "$tpl" >"$CFG"

# ---- start and wait ----------------------------------------------------------
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

t0=$(now_ms)
# In a non-interactive shell the background child is not a process-group
# leader, so setsid execs in place: $! is prosody's own PID (checked below).
setsid prosody -F --config "$CFG" </dev/null >"$OUT" 2>&1 &
PID=$!
echo "$PID" >"$PIDFILE"

fail() {
  echo "prosody/start: FAILED: $*" >&2
  if running "$PID"; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 100); do running "$PID" || break; sleep 0.05; done
    if running "$PID"; then kill -KILL "$PID" 2>/dev/null || true; fi
  fi
  rm -f "$PIDFILE"
  for f in "$OUT" "$LOG"; do
    if [ -s "$f" ]; then echo "---- tail of $f ----" >&2; tail -n 30 "$f" >&2
    else echo "---- $f: empty or missing ----" >&2; fi
  done
  exit 1
}

deadline=$(( t0 + TIMEOUT * 1000 ))
while :; do
  if ! running "$PID"; then
    # start.sh is still its parent: collect the exit status for the report.
    st=0; wait "$PID" 2>/dev/null || st=$?
    why="exit status $st"; [ "$st" -gt 128 ] && why="killed by signal $((st - 128))"
    fail "prosody (pid $PID) exited during startup ($why)"
  fi
  if [ -s "$LOG" ] && grep -q -e 'Failed to open server port' -e 'Failed to load module' \
       -e 'Error loading' "$LOG"; then
    fail "prosody reported a startup error"
  fi
  if port_open "$C2S_PORT" && port_open "$S2S_PORT"; then break; fi
  [ "$(now_ms)" -lt "$deadline" ] || fail "ports not ready after ${TIMEOUT}s"
  sleep 0.02
done
ready_ms=$(( $(now_ms) - t0 ))
echo "$ready_ms" >"$RUN_DIR/ready_ms"
echo "READY pid=$PID c2s=127.0.0.1:$C2S_PORT s2s=127.0.0.1:$S2S_PORT"
