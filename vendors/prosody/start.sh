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
#   vendors/prosody/start.sh --foreground [--tls tls] [other flags]   # for an imfed target file
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
#                  tls: mod_tls, STARTTLS required on c2s and s2s, PLAIN only after
#                     TLS. s2s peers: SASL EXTERNAL when their certificate chains to the
#                     trusted CA and names their domain (Prosody offers/tries it then),
#                     otherwise dialback over TLS (s2s_secure_auth = false). Certificate
#                     from --cert/--key, else one for DOMAIN (EC P-256, subjectAltName
#                     DNS:DOMAIN only) signed by a test CA, both made with openssl: the CA
#                     in --ca-dir (created there if missing, reused if present: give two
#                     instances the same --ca-dir and they authenticate each other by
#                     certificate), the server certificate in RUN_DIR/certs.
#   --cert/--key IMFED_PROSODY_CERT / IMFED_PROSODY_KEY   PEM files (tls mode only)
#   --ca-dir     IMFED_PROSODY_CA_DIR     tls mode: where the test CA lives (ca.crt, ca.key);
#                                         default RUN_DIR/certs (a fresh CA per start).
#                                         Its ca.crt is also Prosody's cafile (trusted for
#                                         s2s certificate authentication).
#   --log-level  IMFED_PROSODY_LOG_LEVEL  minimum level in RUN_DIR/prosody.log: info (default;
#                                         debug logs every stanza, which slows Prosody down)
#   --offline    IMFED_PROSODY_OFFLINE    1 (default, Prosody's default: mod_offline stores
#                                         messages to offline users) | 0 (modules_disabled:
#                                         such messages bounce with service-unavailable)
#   --timeout    IMFED_PROSODY_TIMEOUT    readiness timeout in seconds (default 10)
#   --nagle      IMFED_PROSODY_NAGLE      off (default: TCP_NODELAY on every socket) | on
#                                         (Prosody's own default; ~40 ms stalls, see template)
#   --s2s-timeout IMFED_PROSODY_S2S_TIMEOUT  seconds an outgoing s2s connection may take to
#                                         be established before it is given up and its
#                                         queued stanzas bounce (Prosody's s2s_timeout;
#                                         default: not set, Prosody's own 90 s)
#   --disable-module IMFED_PROSODY_DISABLE  a module to put in modules_disabled (repeatable;
#                                         the env var takes several): a deliberately broken
#                                         target, for showing that the pack catches it
#   --http-port  IMFED_PROSODY_HTTP_PORT  XEP-0363 file sharing (mod_http_file_share) on
#                                         upload.DOMAIN, HTTP on 127.0.0.1:PORT, files up to
#                                         --upload-limit bytes (IMFED_PROSODY_UPLOAD_LIMIT,
#                                         default 8388608); absent: no HTTP at all
#   --secure-domain IMFED_PROSODY_SECURE_DOMAIN  tls mode: a second VirtualHost (no
#                                         accounts) with s2s_secure_auth = true: peers must
#                                         authenticate with a certificate that chains to the
#                                         CA and names them (SASL EXTERNAL); dialback is
#                                         refused. Its certificate is signed by the same CA.
#   --enable-module IMFED_PROSODY_ENABLE    a module to add to modules_enabled (repeatable),
#                                         such as imfed_mutant_trust_dialback (a vendor
#                                         mutant: mod_imfed_mutant_trust_dialback.lua)
#   --foreground IMFED_PROSODY_FOREGROUND=1  render the config, then exec prosody -F in place
#                                         (see "Foreground mode" below)
#
# Foreground mode (what an imfed target file launches): after the same checks
# and rendering, start.sh writes its own PID to RUN_DIR/prosody.pid and execs
# `prosody -F --config RUN_DIR/prosody.cfg.lua`, so that PID is Prosody itself
# and stays in the foreground until SIGTERM/SIGKILL; no readiness polling (the
# caller polls the ports), no READY line. Prosody's warnings and errors also go
# to stderr. Missing settings are taken from the environment the imfed harness
# gives a launched target (flags and IMFED_PROSODY_* / PROSODY_* still win):
#   IMFED_DOMAIN                     -> --domain
#   IMFED_RUN_DIR                    -> --run-dir $IMFED_RUN_DIR/prosody
#   IMFED_C2S, IMFED_S2S (host:port) -> --c2s-port, --s2s-port (host must be 127.0.0.1)
#   IMFED_REF_DOMAIN=IMFED_REF_S2S, IMFED_BLACKHOLE_DOMAIN=IMFED_BLACKHOLE_S2S -> --route
#     (added to any other routes)
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
CA_DIR=${IMFED_PROSODY_CA_DIR:-${PROSODY_CA_DIR:-}}
S2S_TIMEOUT=${IMFED_PROSODY_S2S_TIMEOUT:-${PROSODY_S2S_TIMEOUT:-}}
FOREGROUND=${IMFED_PROSODY_FOREGROUND:-${PROSODY_FOREGROUND:-0}}
DISABLE=()
DISABLE_ENV=${IMFED_PROSODY_DISABLE:-${PROSODY_DISABLE:-}}
for m in ${DISABLE_ENV//,/ }; do DISABLE+=("$m"); done
ENABLE=()
HTTP_PORT=${IMFED_PROSODY_HTTP_PORT:-${PROSODY_HTTP_PORT:-}}
SECURE_DOMAIN=${IMFED_PROSODY_SECURE_DOMAIN:-${PROSODY_SECURE_DOMAIN:-}}
UPLOAD_LIMIT=${IMFED_PROSODY_UPLOAD_LIMIT:-${PROSODY_UPLOAD_LIMIT:-8388608}}
ENABLE_ENV=${IMFED_PROSODY_ENABLE:-${PROSODY_ENABLE:-}}
for m in ${ENABLE_ENV//,/ }; do ENABLE+=("$m"); done
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
    --ca-dir)    need "$@"; CA_DIR=$2; shift 2 ;;
    --s2s-timeout) need "$@"; S2S_TIMEOUT=$2; shift 2 ;;
    --foreground) FOREGROUND=1; shift ;;
    --disable-module) need "$@"; DISABLE+=("$2"); shift 2 ;;
    --enable-module) need "$@"; ENABLE+=("$2"); shift 2 ;;
    --http-port) need "$@"; HTTP_PORT=$2; shift 2 ;;
    --secure-domain) need "$@"; SECURE_DOMAIN=$2; shift 2 ;;
    --upload-limit) need "$@"; UPLOAD_LIMIT=$2; shift 2 ;;
    -h|--help)   sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

case "$FOREGROUND" in 1|true|yes) FOREGROUND=1 ;; 0|false|no|"") FOREGROUND=0 ;;
  *) die "IMFED_PROSODY_FOREGROUND must be 1 or 0" ;; esac

# port_of NAME HOST:PORT: the port, checking the host is 127.0.0.1 (the config
# listens on 127.0.0.1 only).
port_of() {
  [[ "$2" =~ ^127\.0\.0\.1:([0-9]+)$ ]] || die "$1=$2: want 127.0.0.1:PORT"
  echo "${BASH_REMATCH[1]}"
}
if [ "$FOREGROUND" = 1 ]; then
  # Defaults from the imfed harness's launch environment (harness/src/runner/env.rs).
  [ -n "$DOMAIN" ] || DOMAIN=${IMFED_DOMAIN:-}
  if [ -z "$RUN_DIR" ] && [ -n "${IMFED_RUN_DIR:-}" ]; then RUN_DIR=$IMFED_RUN_DIR/prosody; fi
  if [ -z "$C2S_PORT" ] && [ -n "${IMFED_C2S:-}" ]; then C2S_PORT=$(port_of IMFED_C2S "$IMFED_C2S"); fi
  if [ -z "$S2S_PORT" ] && [ -n "${IMFED_S2S:-}" ]; then S2S_PORT=$(port_of IMFED_S2S "$IMFED_S2S"); fi
  if [ -n "${IMFED_REF_DOMAIN:-}" ] && [ -n "${IMFED_REF_S2S:-}" ]; then
    ROUTES+=("$IMFED_REF_DOMAIN=$IMFED_REF_S2S")
  fi
  if [ -n "${IMFED_BLACKHOLE_DOMAIN:-}" ] && [ -n "${IMFED_BLACKHOLE_S2S:-}" ]; then
    ROUTES+=("$IMFED_BLACKHOLE_DOMAIN=$IMFED_BLACKHOLE_S2S")
  fi
fi

[ -n "$DOMAIN" ] || die "--domain is required"
[ -n "$RUN_DIR" ] || die "--run-dir is required"
[[ "$C2S_PORT" =~ ^[0-9]+$ ]] || die "--c2s-port must be a number"
[[ "$S2S_PORT" =~ ^[0-9]+$ ]] || die "--s2s-port must be a number"
[ "$C2S_PORT" != "$S2S_PORT" ] || die "c2s and s2s ports must differ"
[[ "$DOMAIN" =~ ^[A-Za-z0-9.-]+$ ]] || die "bad domain: $DOMAIN"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds"
[[ "$S2S_TIMEOUT" =~ ^([1-9][0-9]*)?$ ]] || die "--s2s-timeout must be whole seconds (> 0)"
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
[ -z "$HTTP_PORT" ] || [[ "$HTTP_PORT" =~ ^[0-9]+$ ]] || die "--http-port must be a number"
[[ "$UPLOAD_LIMIT" =~ ^[0-9]+$ ]] || die "--upload-limit must be a number of bytes"
for p in "$C2S_PORT" "$S2S_PORT" $HTTP_PORT; do
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

# make_test_certs (vendors/test-ca.sh): the test CA (CA_DIR/ca.crt, ca.key: made if missing, else
# reused) and a server certificate for DOMAIN signed by it (RUN_DIR/certs/DOMAIN.crt,
# .key: made at every start). EC P-256 keys: generating them takes milliseconds
# (RSA 2048 takes ~0.1-1 s here). The server certificate names the domain only
# as a DNS subjectAltName (RFC 6125 DNS-ID; no XmppAddr/SRV-ID, which some
# servers reject) and has serverAuth and clientAuth: Prosody presents the same
# certificate as a TLS client on outgoing s2s links.
CAFILE=""
# shellcheck source=../test-ca.sh
. "$HERE/../test-ca.sh"

case "$TLS_MODE" in
  plaintext)
    tls_modules=""
    c2s_req=false s2s_req=false plain_unenc=true
    tls_global="-- (plaintext mode: no certificates, mod_tls not loaded)"
    tls_host=""
    ;;
  tls)
    if [ -z "$CERT" ] || [ -z "$KEY" ]; then
      [ -z "$CERT$KEY" ] || die "--cert and --key go together"
      command -v openssl >/dev/null || die "tls mode needs --cert/--key or openssl"
      make_test_certs "${CA_DIR:-$RUN_DIR/certs}" "$RUN_DIR/certs" "$DOMAIN"
    elif [ -n "$CA_DIR" ]; then
      CAFILE=$CA_DIR/ca.crt   # trust that CA for given certificates too
      [ -r "$CAFILE" ] || die "no $CAFILE"
    fi
    [ -r "$CERT" ] && [ -r "$KEY" ] || die "cannot read --cert $CERT / --key $KEY"
    tls_modules='	"tls";          -- STARTTLS (tls mode)'
    c2s_req=true s2s_req=true plain_unenc=false
    ssl_tbl="{ certificate = $(lua_str "$CERT"), key = $(lua_str "$KEY")"
    [ -z "$CAFILE" ] || ssl_tbl+=", cafile = $(lua_str "$CAFILE")"
    ssl_tbl+=" }"
    tls_global="ssl = $ssl_tbl"
    tls_host="	ssl = $ssl_tbl"
    if [ -n "$SECURE_DOMAIN" ]; then
      [ "$SECURE_DOMAIN" != "$DOMAIN" ] || die "--secure-domain must differ from --domain"
      main_cert=$CERT main_key=$KEY
      make_test_certs "${CA_DIR:-$RUN_DIR/certs}" "$RUN_DIR/certs" "$SECURE_DOMAIN"
      secure_host="VirtualHost $(lua_str "$SECURE_DOMAIN")
	ssl = { certificate = $(lua_str "$CERT"), key = $(lua_str "$KEY"), cafile = $(lua_str "$CAFILE") }
	s2s_secure_auth = true -- start.sh --secure-domain: certificates only, no dialback"
      CERT=$main_cert KEY=$main_key
    fi
    ;;
  *) die "--tls must be plaintext or tls" ;;
esac
[ -z "$SECURE_DOMAIN" ] || [ "$TLS_MODE" = tls ] || die "--secure-domain needs --tls tls"
: "${secure_host:=-- no certificate-only domain (start.sh --secure-domain adds one)}"

extra_log="	-- (background mode: the log file only)"
if [ "$FOREGROUND" = 1 ]; then
  # The harness keeps the launched command's stderr (RUN_DIR/target.stderr) and
  # shows its tail when the target fails to start.
  extra_log='	{ levels = { min = "warn" }, to = "file", filename = "/dev/stderr" }; -- foreground mode'
fi

s2s_timeout="-- s2s_timeout: Prosody's default (90 s)"
[ -z "$S2S_TIMEOUT" ] || s2s_timeout="s2s_timeout = $S2S_TIMEOUT"

disabled=""
[ "$OFFLINE" = 1 ] || disabled='	"offline";      -- --offline 0'
for m in "${DISABLE[@]}"; do
  [[ "$m" =~ ^[a-z0-9_]+$ ]] || die "--disable-module: bad module name $m"
  disabled+=$'\n'"	\"$m\";  -- --disable-module (a deliberately broken target)"
done

enabled=""
for m in "${ENABLE[@]}"; do
  [[ "$m" =~ ^[a-z0-9_]+$ ]] || die "--enable-module: bad module name $m"
  enabled+=$'\n'"	\"$m\";  -- --enable-module"
done

# XEP-0363 (mod_http_file_share) on upload.DOMAIN, listed in DOMAIN's disco#items, its
# URLs on loopback (http_file_share_base_url), HTTP only on 127.0.0.1:HTTP_PORT.
upload="-- no file sharing (start.sh --http-port enables it)"
http_global="-- no HTTP (start.sh --http-port enables it)"
if [ -n "$HTTP_PORT" ]; then
  http_global="http_ports = { $HTTP_PORT }
http_interfaces = { \"127.0.0.1\" }
https_ports = { }
http_external_url = \"http://127.0.0.1:$HTTP_PORT/\"
-- Requests to 127.0.0.1 carry no host name of Prosody's: serve them as the upload component.
http_default_host = \"upload.$DOMAIN\""
  upload="disco_items = { { \"upload.$DOMAIN\", \"HTTP File Upload\" } }

Component \"upload.$DOMAIN\" \"http_file_share\"
	http_file_share_size_limit = $UPLOAD_LIMIT
	http_file_share_daily_quota = $((UPLOAD_LIMIT * 100))"
fi

tpl=$(<"$HERE/prosody.cfg.lua.template")
tpl=${tpl//@@DATA_DIR@@/$RUN_DIR/data}
tpl=${tpl//@@PLUGIN_DIR@@/$HERE}
tpl=${tpl//@@RUN_DIR@@/$RUN_DIR}
tpl=${tpl//@@LOG_LEVEL@@/$LOG_LEVEL}
tpl=${tpl//@@C2S_PORT@@/$C2S_PORT}
tpl=${tpl//@@S2S_PORT@@/$S2S_PORT}
tpl=${tpl//@@TLS_MODULES@@/$tls_modules}
tpl=${tpl//@@MODULES_DISABLED@@/$disabled}
tpl=${tpl//@@MODULES_EXTRA@@/$enabled}
tpl=${tpl//@@UPLOAD@@/$upload}
tpl=${tpl//@@HTTP_GLOBAL@@/$http_global}
tpl=${tpl//@@TLS_MODE@@/$TLS_MODE}
tpl=${tpl//@@NAGLE@@/$NAGLE}
tpl=${tpl//@@C2S_REQUIRE_ENCRYPTION@@/$c2s_req}
tpl=${tpl//@@S2S_REQUIRE_ENCRYPTION@@/$s2s_req}
tpl=${tpl//@@ALLOW_UNENCRYPTED_PLAIN@@/$plain_unenc}
tpl=${tpl//@@TLS_GLOBAL@@/$tls_global}
tpl=${tpl//@@ROUTES@@/${routes_lua%$'\n'}}
tpl=${tpl//@@DOMAIN@@/$DOMAIN}
tpl=${tpl//@@TLS_HOST@@/$tls_host}
tpl=${tpl//@@SECURE_HOST@@/$secure_host}
tpl=${tpl//@@EXTRA_LOG@@/$extra_log}
tpl=${tpl//@@S2S_TIMEOUT@@/$s2s_timeout}
if [[ "$tpl" == *@@* ]]; then die "template placeholder left unfilled: $(grep -o '@@[A-Z_]*@@' <<<"$tpl" | head -1)"; fi
printf '%s\n' "$tpl" >"$CFG"

# ---- foreground: become prosody ----------------------------------------------
if [ "$FOREGROUND" = 1 ]; then
  # exec keeps this PID: the caller's PID is Prosody's, and SIGTERM to it stops
  # Prosody cleanly (mod_posix). stop.sh RUN_DIR works too.
  echo "$$" >"$PIDFILE"
  exec prosody -F --config "$CFG"
fi

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
