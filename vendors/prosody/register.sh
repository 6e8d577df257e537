#!/usr/bin/env bash
# vendors/prosody/register.sh RUN_DIR USER DOMAIN PASSWORD
# Create (or reset the password of) USER@DOMAIN in the Prosody instance whose
# run directory is RUN_DIR, using prosodyctl with RUN_DIR/prosody.cfg.lua
# (rendered by start.sh). Works whether or not that Prosody is running: the
# account lands in RUN_DIR/data, which the server reads at each login.
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 RUN_DIR USER DOMAIN PASSWORD" >&2; exit 2
fi
RUN_DIR=$1 USER_=$2 DOMAIN=$3 PASSWORD=$4
CFG=$RUN_DIR/prosody.cfg.lua
[ -r "$CFG" ] || { echo "register: no $CFG (run start.sh first)" >&2; exit 2; }
out=$(prosodyctl --config "$CFG" register "$USER_" "$DOMAIN" "$PASSWORD" </dev/null 2>&1) || {
  echo "register: prosodyctl failed for $USER_@$DOMAIN:" >&2; echo "$out" >&2; exit 1; }
