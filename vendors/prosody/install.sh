#!/usr/bin/env bash
# vendors/prosody/install.sh — install Prosody 0.12 (Debian package `prosody`)
# for imfed's interop runs, and make sure no system-wide Prosody daemon is
# left running (we only ever run our own instances via start.sh).
#
# Idempotent: does nothing (quietly) when the package is already installed and
# no system daemon is running. Must run as root (apt-get, kill).
#
# Usage: vendors/prosody/install.sh
set -euo pipefail

log() { echo "prosody/install: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "must run as root"; exit 1
fi

# lua-unbound (lua5.4-unbound) is only a Recommends of prosody; without it every prosody /
# prosodyctl run prints "Prosody was unable to find lua-unbound" and falls back
# to net.adns. (Our static-routes module answers mapped domains before either
# resolver is asked, but keep the packaged default setup.)
PKGS=(prosody lua-unbound)

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # apt-get update only if the candidate is unknown (fresh machine / no lists).
  # (capture first: `apt-cache ... | grep -q` trips pipefail with SIGPIPE)
  policy=$(apt-cache policy prosody 2>/dev/null || true)
  if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
    log "apt-get update"
    apt-get update -qq
  fi
  log "installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The package's postinst may have started the Debian-default daemon
# (system-wide config /etc/prosody/prosody.cfg.lua, ports 5222/5269 on all
# interfaces). In containers policy-rc.d usually refuses (exit 101) and nothing
# starts, but on a plain Debian machine it does. Stop it by its PID.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  if systemctl is-active --quiet prosody 2>/dev/null; then
    log "stopping system prosody service (systemd)"
    systemctl stop prosody || true
  fi
  systemctl disable --quiet prosody 2>/dev/null || true
fi
for pidfile in /run/prosody/prosody.pid /var/run/prosody/prosody.pid; do
  [ -r "$pidfile" ] || continue
  pid=$(tr -dc '0-9' <"$pidfile")
  [ -n "$pid" ] || continue
  # Only touch it if that PID really is a prosody (lua) process.
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)
  if [[ "$cmd" == *prosody* ]]; then
    log "stopping system prosody daemon pid=$pid (from $pidfile)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
done

command -v prosody >/dev/null && command -v prosodyctl >/dev/null || {
  log "prosody binaries missing after install"; exit 1; }
