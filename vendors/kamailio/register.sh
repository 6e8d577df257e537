#!/usr/bin/env bash
# vendors/kamailio/register.sh RUN_DIR USER DOMAIN PASSWORD
# Create USER@DOMAIN with PASSWORD in the running Kamailio that start.sh runs for RUN_DIR, or
# reset the password of an existing one: `kamcmd htable.sets users USER PASSWORD` on the
# instance's own control socket RUN_DIR/kamailio_ctl (the users htable is what digest auth
# and the 404 check read). The server must be running: the table lives in its memory and is
# empty at each start. Waits up to 10 s for the control socket (a freshly started instance).
# Exit: 0 registered; 1 refused (DOMAIN is not the instance's domain, bad user name, kamcmd
# failed); 2 usage or no instance.
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 RUN_DIR USER DOMAIN PASSWORD" >&2; exit 2
fi
RUN_DIR=$1 USER_=$2 DOMAIN=$3 PASSWORD=$4
CTL=$RUN_DIR/kamailio_ctl
[ -r "$RUN_DIR/domain" ] || { echo "register: no $RUN_DIR/domain (is start.sh running for $RUN_DIR?)" >&2; exit 2; }
ours=$(<"$RUN_DIR/domain")
if [ "${DOMAIN,,}" != "$ours" ]; then
  echo "register: $DOMAIN is not this instance's domain ($ours)" >&2; exit 1
fi
# A SIP user part that needs no escaping (RFC 3261 §25.1 "unreserved" plus a few).
if ! [[ "$USER_" =~ ^[A-Za-z0-9._~!*\'\(\)+-]+$ ]]; then
  echo "register: user name '$USER_' is not a plain SIP user part" >&2; exit 1
fi
[ -n "$PASSWORD" ] || { echo "register: empty password" >&2; exit 1; }

for _ in $(seq 1 500); do
  [ -S "$CTL" ] && break
  sleep 0.02
done
[ -S "$CTL" ] || { echo "register: no control socket $CTL (is Kamailio running?)" >&2; exit 2; }

# "s:" makes kamcmd pass both as strings (a bare 1234 would be sent as a number).
# kamcmd exits 0 even when the RPC fails ("error: 500 - ..."): the output tells.
if ! out=$(kamcmd -s "unixs:$CTL" htable.sets users "s:$USER_" "s:$PASSWORD" 2>&1) \
   || [[ "$out" == error* ]]; then
  echo "register: kamcmd failed for $USER_@$DOMAIN: $out" >&2; exit 1
fi
