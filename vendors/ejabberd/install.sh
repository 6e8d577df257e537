#!/usr/bin/env bash
# vendors/ejabberd/install.sh — install ejabberd 23.01 (Debian 12 package `ejabberd`)
# for imfed's interop runs, and make sure no system-wide ejabberd or epmd daemon
# is left running (we only ever run our own instances via start.sh, which starts
# `erl` directly with its own node name, cookie and distribution port, and no epmd).
#
# Idempotent: does nothing (quietly) when the package is already installed and
# no system daemon is running. Must run as root (apt-get, kill).
#
# What the package does here (checked in this container): its postinst creates
# user `ejabberd`, /etc/ejabberd/ejabberd.yml, a self-signed /etc/ejabberd/ejabberd.pem,
# and systemd links for ejabberd.service and epmd.service/epmd.socket; it starts
# nothing (policy-rc.d exits 101; without systemd invoke-rc.d has no runlevel).
# On a plain Debian machine it would start ejabberd (ports 5222, 5223, 5269,
# 5280, 5443, 1883, 3478/udp on all interfaces) and epmd (4369): both are stopped
# and disabled below, by PID where there is no systemd.
#
# Usage: vendors/ejabberd/install.sh
set -euo pipefail

log() { echo "ejabberd/install: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "must run as root"; exit 1
fi

st=$(dpkg-query -W -f='${Status}' ejabberd 2>/dev/null || true)
if [ "$st" != "install ok installed" ]; then
  export DEBIAN_FRONTEND=noninteractive
  # apt-get update only if the candidate is unknown (fresh machine / no lists).
  # (capture first: `apt-cache ... | grep -q` trips pipefail with SIGPIPE)
  policy=$(apt-cache policy ejabberd 2>/dev/null || true)
  if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
    log "apt-get update"
    apt-get update -qq
  fi
  log "installing ejabberd"
  apt-get install -y -qq --no-install-recommends ejabberd >/dev/null
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  for unit in ejabberd.service epmd.socket epmd.service; do
    if systemctl is-active --quiet "$unit" 2>/dev/null; then
      log "stopping system $unit (systemd)"
      systemctl stop "$unit" || true
    fi
    systemctl disable --quiet "$unit" 2>/dev/null || true
  done
fi

# stop_pid PID WHAT PATTERN: SIGTERM PID (only if its command line matches
# PATTERN), wait up to 10 s, then SIGKILL.
stop_pid() {
  local pid=$1 what=$2 pattern=$3 cmd
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)
  [[ "$cmd" == *$pattern* ]] || return 0
  log "stopping system $what pid=$pid"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# The Debian daemon (ejabberdctl start/foreground via the init script or the
# unit) writes the beam PID to EJABBERD_PID_PATH (/etc/default/ejabberd).
for pidfile in /run/ejabberd/ejabberd.pid /var/run/ejabberd/ejabberd.pid; do
  [ -r "$pidfile" ] || continue
  pid=$(tr -dc '0-9' <"$pidfile")
  [ -n "$pid" ] && stop_pid "$pid" "ejabberd" "beam"
  rm -f "$pidfile"
done

# A system epmd: started by that daemon's `erl -sname` (epmd -daemon writes no
# PID file). Find it by who listens on its port 4369, then stop that PID, and
# only if it is epmd. Our own instances never use epmd (-start_epmd false).
if command -v ss >/dev/null 2>&1; then
  listeners=$(ss -Hltnp 'sport = :4369' 2>/dev/null || true)
  for pid in $(grep -o 'pid=[0-9]*' <<<"$listeners" | cut -d= -f2 | sort -u); do
    stop_pid "$pid" "epmd" "epmd"
  done
fi

# start.sh finds the code as /usr/lib/<multiarch triplet>/ejabberd-<version>.
command -v erl >/dev/null && ls -d /usr/lib/*/ejabberd-[0-9]* >/dev/null 2>&1 || {
  log "erl or the ejabberd code is missing after install"; exit 1; }
