# vendors/test-ca.sh: sourced by the vendors' start scripts (bash). A test CA and a server
# certificate signed by it, for STARTTLS runs on loopback.
#
# make_test_certs CA_DIR CERT_DIR DOMAIN
#   CA_DIR/ca.crt and ca.key: the test CA, made if missing (else reused, so instances can
#   share one). CERT_DIR/DOMAIN.crt and DOMAIN.key: an EC P-256 server certificate for
#   DOMAIN signed by it, with DNS names only (ejabberd 23.01 crashes on XmppAddr SANs).
#   Sets CAFILE, CERT and KEY to their absolute paths. Calls `die MESSAGE` (the caller's)
#   when openssl fails.
make_test_certs() {
  local ca_dir=$1 cert_dir=$2 domain=$3 tmp
  mkdir -p "$ca_dir" "$cert_dir"
  ca_dir=$(cd "$ca_dir" && pwd)
  cert_dir=$(cd "$cert_dir" && pwd)
  tmp=$cert_dir/tmp.$$
  CAFILE=$ca_dir/ca.crt
  CERT=$cert_dir/$domain.crt
  KEY=$cert_dir/$domain.key
  if [ ! -s "$CAFILE" ] || [ ! -s "$ca_dir/ca.key" ]; then
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
      -days 30 -subj "/O=imfed test CA/CN=imfed test CA $(date +%s%N)" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$ca_dir/ca.key" -out "$CAFILE" >/dev/null 2>&1 \
      || die "openssl failed to make the test CA in $ca_dir"
  fi
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -subj "/CN=$domain" -keyout "$KEY" -out "$tmp.csr" >/dev/null 2>&1 \
    || die "openssl failed to make a key and request for $domain"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:$domain" >"$tmp.ext"
  openssl x509 -req -in "$tmp.csr" -CA "$CAFILE" -CAkey "$ca_dir/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 30 -sha256 -extfile "$tmp.ext" -out "$CERT" \
    >/dev/null 2>&1 || die "openssl failed to sign the certificate for $domain"
  rm -f "$tmp.csr" "$tmp.ext"
  chmod 600 "$KEY"
}
