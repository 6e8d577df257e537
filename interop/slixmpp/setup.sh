#!/usr/bin/env bash
# interop/slixmpp/setup.sh [VENV_DIR]
# Create (or reuse) a Python virtualenv with the pinned slixmpp from
# requirements.txt. VENV_DIR defaults to target/interop-venv under the repo
# root. Idempotent: when the venv already has exactly the pinned versions it
# does nothing but print the interpreter path.
# Env: PYTHON (default python3; needs >= 3.10, tested with 3.11).
# Prints the venv's python path on stdout as its last line.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV=${1:-$ROOT/target/interop-venv}
PY=${PYTHON:-python3}
REQ=$HERE/requirements.txt
log() { echo "slixmpp/setup: $*" >&2; }

command -v "$PY" >/dev/null || { log "no $PY on PATH"; exit 1; }
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || { log "$PY is older than 3.10"; exit 1; }

stamp=$VENV/.imfed-requirements.sha256
want=$( (cat "$REQ"; "$PY" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$VENV/bin/python" -c 'import slixmpp' 2>/dev/null; then
  echo "$VENV/bin/python"; exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  # Debian's own python3 needs python3-venv for ensurepip.
  if ! "$PY" -c 'import ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing python3-venv"
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -qq python3-venv >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; }
    else
      log "$PY lacks ensurepip (install python3-venv)"; exit 1
    fi
  fi
  log "creating venv $VENV"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
fi
log "installing $(grep -c '==' "$REQ") pinned packages"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$REQ"
"$VENV/bin/python" -c 'import slixmpp; print("slixmpp", slixmpp.__version__)' >&2
echo "$want" >"$stamp"
echo "$VENV/bin/python"
