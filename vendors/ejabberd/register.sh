#!/usr/bin/env bash
# vendors/ejabberd/register.sh RUN_DIR USER DOMAIN PASSWORD
# Create USER@DOMAIN with PASSWORD in the ejabberd that start.sh runs for RUN_DIR
# (the directory holding node.env), or set the password if USER already exists.
# It is ejabberdctl's `register` (then `change_password`, from mod_admin_extra, on
# conflict) without the ejabberdctl wrapper, which as root re-runs itself as user
# `ejabberd` through su: a hidden `erl` node calls ejabberd_ctl on the running node,
# with the node name, cookie and distribution port start.sh recorded (no epmd).
# The server must be running. Each call boots an Erlang VM (~0.25 s); in-band
# registration (the target files' provision: {in_band: true}) is faster.
# Exit: 0 registered; 1 refused (e.g. unknown virtual host) or node unreachable; 2 usage.
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 RUN_DIR USER DOMAIN PASSWORD" >&2; exit 2
fi
RUN_DIR=$1 USER_=$2 DOMAIN=$3 PASSWORD=$4
ENV_FILE=$RUN_DIR/node.env
[ -r "$ENV_FILE" ] || { echo "register: no $ENV_FILE (is start.sh running for $RUN_DIR?)" >&2; exit 2; }
NODE="" DIST_PORT="" COOKIE_HOME="" ERL_LIBS=""
while IFS='=' read -r key value; do
  case "$key" in NODE|DIST_PORT|COOKIE_HOME|ERL_LIBS) printf -v "$key" '%s' "$value" ;; esac
done <"$ENV_FILE"
[ -n "$NODE" ] && [ -n "$DIST_PORT" ] && [ -r "$COOKIE_HOME/.erlang.cookie" ] || {
  echo "register: $ENV_FILE is incomplete (or no .erlang.cookie)" >&2; exit 2; }
# The node's cookie: erl reads $HOME/.erlang.cookie.
export ERL_LIBS HOME=$COOKIE_HOME

# ctl ARGS...: one ejabberd_ctl command on the node; its output in $out, status returned.
# The client's own name is unique (several registrations may run at once); it does not
# listen (-dist_listen false) and reaches the node on DIST_PORT (-erl_epmd_port).
out=""
ctl() {
  local st=0
  out=$(erl -sname "imfed-ctl-$$-$RANDOM@localhost" -hidden -noinput \
          -start_epmd false -erl_epmd_port "$DIST_PORT" -dist_listen false \
          +sbwt none +sbwtdcpu none +sbwtdio none \
          -s ejabberd_ctl -extra "$NODE" "$@" </dev/null 2>&1) || st=$?
  return "$st"
}

if ctl register "$USER_" "$DOMAIN" "$PASSWORD"; then exit 0; fi
if [[ "$out" == *conflict* ]]; then
  ctl change_password "$USER_" "$DOMAIN" "$PASSWORD" && exit 0
fi
echo "register: $USER_@$DOMAIN: $out" >&2
exit 1
