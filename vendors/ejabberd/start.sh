#!/usr/bin/env bash
# vendors/ejabberd/start.sh — run one ejabberd 23.01 (Debian) on loopback for imfed, in the
# foreground, with the loopback DNS responder through which it finds its peers.
#
# Usage:
#   vendors/ejabberd/start.sh                        # an imfed target file: all from IMFED_*
#   vendors/ejabberd/start.sh --domain ej.test --run-dir /tmp/ej \
#       --c2s-port 25222 --s2s-port 25269 --host pb.test=127.0.0.1:25369 [--host ...] \
#       [--tls plaintext|tls] [--ca-dir DIR] [--dist-port N] [--log-level LEVEL] \
#       [--negotiation-timeout MS] [--outgoing-timeout MS] [--max-retry-delay MS] \
#       [--ready-timeout SECONDS]
#
# Every flag has an environment-variable equivalent (flags win). Missing settings come
# from the environment the imfed harness gives a launched target (harness/src/runner/env.rs):
#   --domain      IMFED_EJABBERD_DOMAIN      else IMFED_DOMAIN         the XMPP domain served
#   --run-dir     IMFED_EJABBERD_RUN_DIR     else $IMFED_RUN_DIR/ejabberd (emptied at start)
#   --c2s-port    IMFED_EJABBERD_C2S_PORT    else the port of IMFED_C2S (host must be 127.0.0.1)
#   --s2s-port    IMFED_EJABBERD_S2S_PORT    else the port of IMFED_S2S (host must be 127.0.0.1)
#   --host        IMFED_EJABBERD_HOSTS       DOMAIN=IP:PORT, repeatable (the env var takes several
#                                            separated by spaces or commas); always added:
#                                            IMFED_REF_DOMAIN=IMFED_REF_S2S and
#                                            IMFED_BLACKHOLE_DOMAIN=IMFED_BLACKHOLE_S2S when set.
#                                            Only these domains resolve (SRV from the responder,
#                                            address from the hosts file); all else fails.
#   --tls         IMFED_EJABBERD_TLS         plaintext (default) | tls:
#                   plaintext: starttls: false on c2s, s2s_use_starttls: false, dialback.
#                   tls: starttls_required on c2s, s2s_use_starttls: required; a certificate for
#                     DOMAIN (EC P-256, subjectAltName DNS:DOMAIN only: ejabberd 23.01 crashes
#                     on an XmppAddr SAN during certificate authentication) signed by a test CA
#                     that is also s2s_cafile: peers whose certificate chains to it and names
#                     them are authenticated by SASL EXTERNAL, others by dialback over TLS.
#   --ca-dir      IMFED_EJABBERD_CA_DIR      tls: where the test CA lives (ca.crt, ca.key: made
#                                            if missing, reused if present); default
#                                            RUN_DIR/certs (a fresh CA per start)
#   --dist-port   IMFED_EJABBERD_DIST_PORT   Erlang distribution port on 127.0.0.1 (register.sh
#                                            talks to the node through it; no epmd); default: a
#                                            free port picked here
#   --http-port   IMFED_EJABBERD_HTTP_PORT   XEP-0363 file upload (mod_http_upload) on
#                                            upload.DOMAIN, HTTP on 127.0.0.1:PORT (files in
#                                            RUN_DIR/upload, up to 8388608 bytes); absent: no HTTP
#   --log-level   IMFED_EJABBERD_LOG_LEVEL   ejabberd loglevel: info (default) | debug | warning ...
#   --negotiation-timeout IMFED_EJABBERD_NEGOTIATION_TIMEOUT  ms (default 5000; ejabberd's 30000):
#                                            a peer that accepts TCP and never answers is given
#                                            up (its stanzas bounced) after this
#   --outgoing-timeout    IMFED_EJABBERD_OUTGOING_TIMEOUT     ms, TCP connect to a peer (default
#                                            5000; ejabberd's 10000)
#   --max-retry-delay     IMFED_EJABBERD_MAX_RETRY_DELAY      ms, s2s_max_retry_delay (default
#                                            300000, ejabberd's)
#   --ready-timeout IMFED_EJABBERD_READY_TIMEOUT  seconds to wait for READY (default 20)
#   IMFED_BIN     the imfed binary (for `imfed dns`); default: imfed on PATH, else
#                 target/debug/imfed or target/release/imfed of this checkout
#
# What it does: empties RUN_DIR (its own files in it); makes the test certificates (tls);
# starts `imfed dns --listen 127.0.0.1:0 --host ...` and reads its `READY dns=127.0.0.1:PORT`;
# writes RUN_DIR/inetrc (Erlang's resolver: only that nameserver, no resolv.conf, no hosts
# file), RUN_DIR/hosts, nsswitch.conf and resolv.conf (see "Name resolution" in the body:
# libc must not reach a real DNS server either) and RUN_DIR/ejabberd.yml (from
# ejabberd.yml.template); starts, in a private mount namespace where those three files are
# bind-mounted over /etc's, `erl -sname imfed-ej-<c2s port>@localhost -start_epmd false
# -erl_epmd_port <dist port> -kernel inet_dist_use_interface {127,0,0,1} -mnesia dir
# RUN_DIR/db -s ejabberd` (unshare, sh, erl and erlexec all exec in place: the PID is
# beam.smp, the server itself); keeps both as children. When both listeners accept TCP it
# prints one line on stdout:
#   READY pid=<beam pid> c2s=127.0.0.1:<port> s2s=127.0.0.1:<port> dns=127.0.0.1:<port> ms=<start-up ms>
# then waits. SIGTERM or SIGINT: forwarded by PID to ejabberd and the responder, waits up
# to 8 s for them (then SIGKILL), exits 0. If either child exits by itself, the other is
# stopped the same way and start.sh exits 1. Needs root (mount namespace).
#
# Files in RUN_DIR: ejabberd.yml, inetrc, hosts, nsswitch.conf, resolv.conf, .erlang.cookie
# (0400; the node runs with HOME=RUN_DIR), node.env (NODE, DIST_PORT, COOKIE_HOME, ERL_LIBS:
# read by register.sh), start.pid (this script), ejabberd.pid, dns.pid (read by stop.sh),
# ejabberd.log and error.log (ejabberd's), erl.out (the VM's console), dns.out, dns.err,
# db/ (Mnesia), certs/ (tls), ready_ms.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

DOMAIN=${IMFED_EJABBERD_DOMAIN:-}
RUN_DIR=${IMFED_EJABBERD_RUN_DIR:-}
C2S_PORT=${IMFED_EJABBERD_C2S_PORT:-}
S2S_PORT=${IMFED_EJABBERD_S2S_PORT:-}
TLS_MODE=${IMFED_EJABBERD_TLS:-plaintext}
CA_DIR=${IMFED_EJABBERD_CA_DIR:-}
DIST_PORT=${IMFED_EJABBERD_DIST_PORT:-}
HTTP_PORT=${IMFED_EJABBERD_HTTP_PORT:-}
LOG_LEVEL=${IMFED_EJABBERD_LOG_LEVEL:-info}
NEGOTIATION_TIMEOUT=${IMFED_EJABBERD_NEGOTIATION_TIMEOUT:-5000}
OUTGOING_TIMEOUT=${IMFED_EJABBERD_OUTGOING_TIMEOUT:-5000}
MAX_RETRY_DELAY=${IMFED_EJABBERD_MAX_RETRY_DELAY:-300000}
READY_TIMEOUT=${IMFED_EJABBERD_READY_TIMEOUT:-20}
HOSTS=()
HOSTS_ENV=${IMFED_EJABBERD_HOSTS:-}
for h in ${HOSTS_ENV//,/ }; do HOSTS+=("$h"); done

die() { echo "ejabberd/start: $*" >&2; exit 2; }
need() { [ $# -ge 2 ] || die "$1 needs a value"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --domain)      need "$@"; DOMAIN=$2; shift 2 ;;
    --run-dir)     need "$@"; RUN_DIR=$2; shift 2 ;;
    --c2s-port)    need "$@"; C2S_PORT=$2; shift 2 ;;
    --s2s-port)    need "$@"; S2S_PORT=$2; shift 2 ;;
    --host)        need "$@"; HOSTS+=("$2"); shift 2 ;;
    --tls)         need "$@"; TLS_MODE=$2; shift 2 ;;
    --ca-dir)      need "$@"; CA_DIR=$2; shift 2 ;;
    --dist-port)   need "$@"; DIST_PORT=$2; shift 2 ;;
    --http-port)   need "$@"; HTTP_PORT=$2; shift 2 ;;
    --log-level)   need "$@"; LOG_LEVEL=$2; shift 2 ;;
    --negotiation-timeout) need "$@"; NEGOTIATION_TIMEOUT=$2; shift 2 ;;
    --outgoing-timeout)    need "$@"; OUTGOING_TIMEOUT=$2; shift 2 ;;
    --max-retry-delay)     need "$@"; MAX_RETRY_DELAY=$2; shift 2 ;;
    --ready-timeout)       need "$@"; READY_TIMEOUT=$2; shift 2 ;;
    -h|--help)     sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

# port_of NAME HOST:PORT: the port, checking the host is 127.0.0.1 (the listeners
# are on 127.0.0.1 only).
port_of() {
  [[ "$2" =~ ^127\.0\.0\.1:([0-9]+)$ ]] || die "$1=$2: want 127.0.0.1:PORT"
  echo "${BASH_REMATCH[1]}"
}
[ -n "$DOMAIN" ] || DOMAIN=${IMFED_DOMAIN:-}
if [ -z "$RUN_DIR" ] && [ -n "${IMFED_RUN_DIR:-}" ]; then RUN_DIR=$IMFED_RUN_DIR/ejabberd; fi
if [ -z "$C2S_PORT" ] && [ -n "${IMFED_C2S:-}" ]; then C2S_PORT=$(port_of IMFED_C2S "$IMFED_C2S"); fi
if [ -z "$S2S_PORT" ] && [ -n "${IMFED_S2S:-}" ]; then S2S_PORT=$(port_of IMFED_S2S "$IMFED_S2S"); fi
if [ -n "${IMFED_REF_DOMAIN:-}" ] && [ -n "${IMFED_REF_S2S:-}" ]; then
  HOSTS+=("$IMFED_REF_DOMAIN=$IMFED_REF_S2S")
fi
if [ -n "${IMFED_BLACKHOLE_DOMAIN:-}" ] && [ -n "${IMFED_BLACKHOLE_S2S:-}" ]; then
  HOSTS+=("$IMFED_BLACKHOLE_DOMAIN=$IMFED_BLACKHOLE_S2S")
fi

[ -n "$DOMAIN" ] || die "--domain is required (or IMFED_DOMAIN)"
[ -n "$RUN_DIR" ] || die "--run-dir is required (or IMFED_RUN_DIR)"
[[ "$DOMAIN" =~ ^[A-Za-z0-9.-]+$ ]] || die "bad domain: $DOMAIN"
for v in C2S_PORT S2S_PORT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "--$(tr 'A-Z_' 'a-z-' <<<"${v}") must be a port number"
done
[ "$C2S_PORT" != "$S2S_PORT" ] || die "c2s and s2s ports must differ"
for v in NEGOTIATION_TIMEOUT OUTGOING_TIMEOUT MAX_RETRY_DELAY READY_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done
case "$TLS_MODE" in plaintext|tls) ;; *) die "--tls must be plaintext or tls" ;; esac
case "$LOG_LEVEL" in none|emergency|alert|critical|error|warning|notice|info|debug) ;;
  *) die "bad --log-level: $LOG_LEVEL" ;; esac
for h in "${HOSTS[@]}"; do
  [[ "$h" =~ ^[A-Za-z0-9.-]+=(\[[0-9A-Fa-f:.]+\]|[0-9.]+):[0-9]+$ ]] || die "bad --host '$h' (want DOMAIN=IP:PORT)"
done

command -v erl >/dev/null || die "erl not found (run vendors/ejabberd/install.sh)"
# The private mount namespace (see "Name resolution" below) needs root and unshare(1).
unshare --mount --propagation private -- /bin/sh -c 'mount --bind /etc/hosts /etc/hosts' 2>/dev/null \
  || die "cannot run in a private mount namespace (unshare --mount; needs root): without it ejabberd would resolve peers with the system's DNS"
EJ_CODE=$(ls -d /usr/lib/*/ejabberd-[0-9]* 2>/dev/null | head -n 1)
[ -n "$EJ_CODE" ] || die "ejabberd code not found under /usr/lib/*/ (run vendors/ejabberd/install.sh)"

# The imfed binary for the DNS responder.
IMFED=${IMFED_BIN:-}
if [ -z "$IMFED" ]; then
  if command -v imfed >/dev/null; then IMFED=imfed
  elif [ -x "$REPO/target/debug/imfed" ]; then IMFED=$REPO/target/debug/imfed
  elif [ -x "$REPO/target/release/imfed" ]; then IMFED=$REPO/target/release/imfed
  else die "no imfed binary: set IMFED_BIN or run cargo build -p imfed"; fi
fi

# running PID: exists and is not a zombie. (Not /proc/PID/cmdline: it reads empty for an
# instant while a process execs; see vendors/prosody/README.md.)
running() {
  local st
  st=$(sed 's/^.*) //' 2>/dev/null <"/proc/$1/stat" | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}
# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
if [ -s "$RUN_DIR/start.pid" ]; then
  old=$(tr -dc '0-9' <"$RUN_DIR/start.pid")
  if [ -n "$old" ] && running "$old" && [ "$old" != $$ ]; then
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$old/cmdline" || true)
    [[ "$cmd" != *start.sh* ]] || die "a start.sh (pid $old) is still running for $RUN_DIR: stop.sh it first"
  fi
fi
for p in "$C2S_PORT" "$S2S_PORT"; do
  port_open "$p" && die "port 127.0.0.1:$p is already in use"
done

# A free distribution port: the caller's, else one in 20000-32767 (below Linux's
# ephemeral range, where the harness's port-0 picks land) that nothing listens on.
if [ -z "$DIST_PORT" ]; then
  for _ in $(seq 1 50); do
    cand=$(( 20000 + RANDOM % 12768 ))
    if ! port_open "$cand" && ! ss -Hltn "sport = :$cand" 2>/dev/null | grep -q .; then
      DIST_PORT=$cand; break
    fi
  done
  [ -n "$DIST_PORT" ] || die "no free distribution port found"
fi
[[ "$DIST_PORT" =~ ^[0-9]+$ ]] || die "--dist-port must be a port number"

# A fresh run directory (only our own files: the directory itself may be the caller's).
rm -rf "$RUN_DIR/db" "$RUN_DIR"/{.erlang.cookie,ejabberd.yml,inetrc,hosts,nsswitch.conf,resolv.conf,node.env,ejabberd.pid,dns.pid,ejabberd.log,error.log,crash.log,erl.out,dns.out,dns.err,ready_ms}
[ -n "$CA_DIR" ] || rm -rf "$RUN_DIR/certs"
echo $$ >"$RUN_DIR/start.pid"

# ---- certificates (tls) ----------------------------------------------------------
# make_test_certs (vendors/test-ca.sh): the test CA (made if missing, else reused) and
# RUN_DIR/certs/DOMAIN.pem (certificate + key) signed by it. EC P-256 (milliseconds to
# make); DNS subjectAltName only; serverAuth and clientAuth (ejabberd presents it as a TLS
# client on outgoing s2s links too).
# shellcheck source=../test-ca.sh
. "$HERE/../test-ca.sh"

if [ "$TLS_MODE" = tls ]; then
  command -v openssl >/dev/null || die "--tls tls needs openssl"
  make_test_certs "${CA_DIR:-$RUN_DIR/certs}" "$RUN_DIR/certs" "$DOMAIN"
  # ejabberd takes the certificate and its key in one file.
  CERTFILE=$RUN_DIR/certs/$DOMAIN.pem
  cat "$CERT" "$KEY" >"$CERTFILE"
  chmod 600 "$CERTFILE"
  certfiles=$'certfiles:\n  - "'"$CERTFILE"'"'
  c2s_tls=$'    starttls: true\n    starttls_required: true'
  s2s_use_starttls=required
  # ca_file: what ejabberd checks its own certificate chain against (default: the system
  # bundle, which makes it log "signed by unknown CA"); s2s_cafile: peers' certificates.
  s2s_cafile="ca_file: \"$CAFILE\""$'\n'"s2s_cafile: \"$CAFILE\""
else
  certfiles="## (plaintext: no certificates)"
  c2s_tls="    starttls: false"
  s2s_use_starttls=false
  s2s_cafile="## (plaintext: no ca_file, no s2s_cafile)"
fi

# ---- processes ---------------------------------------------------------------------
ERL_PID="" DNS_PID="" STOPPING=""

# stop_children: SIGTERM both by PID, wait up to 8 s (below the harness's default 10 s
# stop bound), then SIGKILL what is left; reap them.
stop_children() {
  local pid end
  for pid in $ERL_PID $DNS_PID; do
    running "$pid" && kill -TERM "$pid" 2>/dev/null || true
  done
  end=$(( $(now_ms) + 8000 ))
  for pid in $ERL_PID $DNS_PID; do
    while running "$pid" && [ "$(now_ms)" -lt "$end" ]; do sleep 0.02; done
    if running "$pid"; then
      echo "ejabberd/start: pid $pid ignored SIGTERM for 8 s; SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pid in $ERL_PID $DNS_PID; do wait "$pid" 2>/dev/null || true; done
}
on_signal() { STOPPING=1; }
trap on_signal TERM INT
# Exit paths stop the children (a failed start, or an error in this script).
trap 'stop_children' EXIT

fail() {
  echo "ejabberd/start: FAILED: $*" >&2
  for f in "$RUN_DIR/dns.err" "$RUN_DIR/erl.out" "$RUN_DIR/error.log"; do
    [ -s "$f" ] && { echo "---- tail of $f ----" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

t0=$(now_ms)

# The DNS responder. Its stdout is a file: READY is read from there (a pipe would be
# closed by us later, and the responder must not depend on it).
dns_args=(dns --listen 127.0.0.1:0)
for h in "${HOSTS[@]}"; do dns_args+=(--host "$h"); done
"$IMFED" "${dns_args[@]}" </dev/null >"$RUN_DIR/dns.out" 2>"$RUN_DIR/dns.err" &
DNS_PID=$!
echo "$DNS_PID" >"$RUN_DIR/dns.pid"
DNS_PORT=""
deadline=$(( t0 + 10000 ))
while [ -z "$DNS_PORT" ]; do
  [ -z "$STOPPING" ] || exit 0
  running "$DNS_PID" || fail "the DNS responder ($IMFED dns) exited"
  if read -r line 2>/dev/null <"$RUN_DIR/dns.out" && [[ "$line" =~ ^READY\ dns=127\.0\.0\.1:([0-9]+)$ ]]; then
    DNS_PORT=${BASH_REMATCH[1]}
  else
    [ "$(now_ms)" -lt "$deadline" ] || fail "no READY from the DNS responder within 10 s"
    sleep 0.01
  fi
done

# Name resolution of the VM, which must never reach a real DNS server:
# - SRV (`_xmpp-server._tcp.DOMAIN`, through Erlang's inet_res): ERL_INETRC below, the
#   responder and nothing else (no resolv.conf, no hosts file, no libc);
# - the SRV target's address: p1_xmpp 1.6.1 asks libc (net:getaddrinfo), which would
#   read the system's /etc/resolv.conf, also for domains that have no SRV record (e.g.
#   nowhere.invalid). So the VM runs in its own mount namespace where /etc/hosts lists
#   the test domains, /etc/nsswitch.conf says `hosts: files` (no DNS), and
#   /etc/resolv.conf names only 127.0.0.1.
{
  echo "127.0.0.1 localhost"
  for h in "${HOSTS[@]}"; do
    hd=${h%%=*} ha=${h#*=}; ha=${ha%:*}; ha=${ha#[}; ha=${ha%]}
    echo "$ha $hd"
  done
} >"$RUN_DIR/hosts"
{
  grep -v '^[[:space:]]*hosts:' /etc/nsswitch.conf 2>/dev/null || true
  echo "hosts: files"
} >"$RUN_DIR/nsswitch.conf"
printf 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n' >"$RUN_DIR/resolv.conf"

# `localhost` (in the inetrc too) is needed for the node's own name.
cat >"$RUN_DIR/inetrc" <<EOF
{resolv_conf, ""}.
{hosts_file, ""}.
{host, {127,0,0,1}, ["localhost"]}.
{nameserver, {127,0,0,1}, $DNS_PORT}.
{lookup, [file, dns]}.
{timeout, 2000}.
{retry, 2}.
EOF

http_listen=""
http_upload=""
if [ -n "$HTTP_PORT" ]; then
  [[ "$HTTP_PORT" =~ ^[0-9]+$ ]] || die "--http-port must be a number"
  mkdir -p "$RUN_DIR/upload"
  http_listen="  -
    port: $HTTP_PORT
    ip: \"127.0.0.1\"
    module: ejabberd_http
    request_handlers:
      /upload: mod_http_upload"
  http_upload="  mod_http_upload:            # XEP-0363, URLs on loopback
    hosts: [\"upload.$DOMAIN\"]
    put_url: \"http://127.0.0.1:$HTTP_PORT/upload\"
    docroot: \"$RUN_DIR/upload\"
    max_size: 8388608
    thumbnail: false"
fi

tpl=$(<"$HERE/ejabberd.yml.template")
tpl=${tpl//@@TLS_MODE@@/$TLS_MODE}
tpl=${tpl//@@DOMAIN@@/$DOMAIN}
tpl=${tpl//@@LOG_LEVEL@@/$LOG_LEVEL}
tpl=${tpl//@@C2S_PORT@@/$C2S_PORT}
tpl=${tpl//@@S2S_PORT@@/$S2S_PORT}
tpl=${tpl//@@S2S_USE_STARTTLS@@/$s2s_use_starttls}
tpl=${tpl//@@OUTGOING_S2S_TIMEOUT@@/$OUTGOING_TIMEOUT}
tpl=${tpl//@@NEGOTIATION_TIMEOUT@@/$NEGOTIATION_TIMEOUT}
tpl=${tpl//@@S2S_MAX_RETRY_DELAY@@/$MAX_RETRY_DELAY}
tpl=${tpl//'#@@CERTFILES@@'/$certfiles}
tpl=${tpl//'#@@C2S_TLS@@'/$c2s_tls}
tpl=${tpl//'#@@S2S_CAFILE@@'/$s2s_cafile}
tpl=${tpl//'#@@HTTP_LISTEN@@'/$http_listen}
tpl=${tpl//'#@@HTTP_UPLOAD@@'/$http_upload}
if [[ "$tpl" == *@@* ]]; then die "template placeholder left unfilled: $(grep -o '@@[A-Z_]*@@' <<<"$tpl" | head -1)"; fi
printf '%s\n' "$tpl" >"$RUN_DIR/ejabberd.yml"

# Node name, cookie and distribution port, unique per run; register.sh reads node.env.
NODE=imfed-ej-$C2S_PORT@localhost
# The cookie is RUN_DIR/.erlang.cookie with HOME=RUN_DIR (so it is not on a command line).
( umask 077; head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN_DIR/.erlang.cookie" )
chmod 400 "$RUN_DIR/.erlang.cookie"
printf 'NODE=%s\nDIST_PORT=%s\nCOOKIE_HOME=%s\nERL_LIBS=%s\n' \
  "$NODE" "$DIST_PORT" "$RUN_DIR" "$(dirname "$EJ_CODE")" >"$RUN_DIR/node.env"

# erl is a script that execs erlexec, which execs beam.smp: $! is the server itself.
# +sbwt none...: schedulers do not busy-wait (a 2-core machine shared with the harness).
# -ejabberd quiet true: no copy of the log on the console (it is in ejabberd.log).
# unshare (no --fork) and sh exec in place, so the PID stays the server's throughout.
(
  cd "$RUN_DIR"
  export ERL_LIBS; ERL_LIBS=$(dirname "$EJ_CODE")
  export EJABBERD_CONFIG_PATH=$RUN_DIR/ejabberd.yml EJABBERD_LOG_PATH=$RUN_DIR/ejabberd.log
  export ERL_INETRC=$RUN_DIR/inetrc ERL_CRASH_DUMP_BYTES=0 HOME=$RUN_DIR
  exec unshare --mount --propagation private -- /bin/sh -c \
    'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf &&
     mount --bind "$3" /etc/resolv.conf && shift 3 && exec "$@"' \
    sh "$RUN_DIR/hosts" "$RUN_DIR/nsswitch.conf" "$RUN_DIR/resolv.conf" \
    erl -sname "$NODE" -noinput \
    -start_epmd false -erl_epmd_port "$DIST_PORT" \
    -kernel inet_dist_use_interface '{127,0,0,1}' \
    +sbwt none +sbwtdcpu none +sbwtdio none \
    -mnesia dir "\"$RUN_DIR/db\"" -ejabberd quiet true -s ejabberd
) </dev/null >"$RUN_DIR/erl.out" 2>&1 &
ERL_PID=$!
echo "$ERL_PID" >"$RUN_DIR/ejabberd.pid"

deadline=$(( t0 + READY_TIMEOUT * 1000 ))
while :; do
  [ -z "$STOPPING" ] || exit 0
  running "$ERL_PID" || fail "ejabberd (pid $ERL_PID) exited during start-up"
  running "$DNS_PID" || fail "the DNS responder exited during start-up"
  if port_open "$C2S_PORT" && port_open "$S2S_PORT"; then break; fi
  [ "$(now_ms)" -lt "$deadline" ] || fail "ports not ready after ${READY_TIMEOUT}s"
  sleep 0.02
done
ready_ms=$(( $(now_ms) - t0 ))
echo "$ready_ms" >"$RUN_DIR/ready_ms"
echo "READY pid=$ERL_PID c2s=127.0.0.1:$C2S_PORT s2s=127.0.0.1:$S2S_PORT dns=127.0.0.1:$DNS_PORT ms=$ready_ms"

# Serve until a signal, or until a child exits by itself.
status=0
while [ -z "$STOPPING" ]; do
  wait -n "$ERL_PID" "$DNS_PID" 2>/dev/null && st=0 || st=$?
  [ -z "$STOPPING" ] || break
  if ! running "$ERL_PID" || ! running "$DNS_PID"; then
    who=ejabberd; running "$ERL_PID" && who="the DNS responder"
    echo "ejabberd/start: $who exited by itself (status $st); stopping" >&2
    status=1; break
  fi
done
trap - EXIT
stop_children
rm -f "$RUN_DIR/start.pid"
exit "$status"
