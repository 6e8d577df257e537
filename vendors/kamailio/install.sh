#!/usr/bin/env bash
# vendors/kamailio/install.sh — install Kamailio 5.6 (Debian 12 packages) for imfed's
# SIP/SIMPLE interop runs, and make sure no system-wide Kamailio daemon is left running
# (we only ever run our own instances, via start.sh, on 127.0.0.1).
#
# Packages: kamailio (core, tm, sl, registrar, usrloc, auth, htable, maxfwd, rr, sanity,
# textops, siputils, xlog, pv, ctl, ...), kamailio-presence-modules (presence,
# presence_xml), kamailio-utils-modules (kamailio's extra utilities; not strictly needed by
# kamailio.cfg.template, installed because the measured setup in
# /work/shared/specs/NOTES-sip-peers.md had it), kamailio-tls-modules (tls.so, for the TLS
# variant: start.sh --tls tls). SIPp (sip-tester) is not installed: the demo drives Kamailio
# with its own Python 3 stdlib client (sipprobe.py).
#
# The package's postinst would start the Debian-default daemon (/etc/kamailio/kamailio.cfg,
# which listens on all interfaces, port 5060) where invoke-rc.d is allowed to. During the
# install a policy-rc.d that exits 101 refuses every start; it is ours only if there was
# none (an existing one, e.g. Docker's, is left as it was). Afterwards any Kamailio started
# from the packaged config is stopped by the PID in its pid file.
#
# Idempotent: quiet and fast (dpkg-query only) when everything is installed and no system
# daemon runs. Must run as root. Prints the installed version on stdout at the end.
#
# Usage: vendors/kamailio/install.sh
set -euo pipefail

log() { echo "kamailio/install: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "must run as root"; exit 1
fi

PKGS=(kamailio kamailio-presence-modules kamailio-utils-modules kamailio-tls-modules)

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done

POLICY=/usr/sbin/policy-rc.d
our_policy=0
remove_policy() {
  if [ "$our_policy" = 1 ]; then rm -f "$POLICY"; our_policy=0; fi
}
trap remove_policy EXIT

if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# vendors/kamailio/install.sh: no service starts during the install\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    our_policy=1
  fi
  # apt-get update only if the candidate is unknown (fresh machine / no lists).
  # (capture first: `apt-cache ... | grep -q` trips pipefail with SIGPIPE)
  policy=$(apt-cache policy kamailio 2>/dev/null || true)
  if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
    log "apt-get update"
    apt-get update -qq
  fi
  log "installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  remove_policy
fi

# A system daemon that started anyway (a plain Debian machine with systemd, or someone ran
# the init script): stop and disable the unit, or stop it by its pid file's PID, and only
# if that PID really is a kamailio process.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  if systemctl is-active --quiet kamailio 2>/dev/null; then
    log "stopping system kamailio service (systemd)"
    systemctl stop kamailio || true
  fi
  systemctl disable --quiet kamailio 2>/dev/null || true
fi
for pidfile in /run/kamailio/kamailio.pid /var/run/kamailio/kamailio.pid; do
  [ -r "$pidfile" ] || continue
  pid=$(tr -dc '0-9' <"$pidfile")
  [ -n "$pid" ] || continue
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)
  if [[ "$cmd" == *kamailio* ]]; then
    log "stopping system kamailio daemon pid=$pid (from $pidfile)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
done

for m in presence presence_xml htable tls; do
  [ -r "/usr/lib/x86_64-linux-gnu/kamailio/modules/$m.so" ] \
    || ls /usr/lib/*/kamailio/modules/"$m".so >/dev/null 2>&1 \
    || { log "module $m.so is missing after install"; exit 1; }
done
if ! command -v kamailio >/dev/null || ! command -v kamcmd >/dev/null; then
  log "kamailio or kamcmd is missing after install"; exit 1
fi
dpkg-query -W -f='kamailio ${Version}\n' kamailio
