#!/usr/bin/env bash
# make-test-certs.sh DIR — certificates for the TLS/DTLS tests (SPEC §3), made with the
# `openssl` command of OpenSSL 3.0 (EC P-256 keys: fast). Nothing here is secret: the
# keys exist only for tests. Idempotent: does nothing when DIR/.complete is newer than
# this script; otherwise rebuilds DIR from scratch (in a temporary directory that
# replaces DIR at the end, so a half-made DIR is never seen). Prints one line.
#
# Files (NAME.pem certificate, NAME.key private key, mode 600):
#   ca                 test CA "CN=flowsec test CA"
#   server             CN=localhost, DNS:localhost IP:127.0.0.1 IP:::1, signed by ca
#   exporter1          client, CN=exporter1.flowsec.test, DNS:exporter1.flowsec.test, by ca
#   exporter2          client, CN=exporter2.flowsec.test, DNS:exporter2.flowsec.test, by ca
#   expired            like server, valid 2020-01-01 .. 2021-01-01 only
#   not-yet-valid      like server, valid from 2099-01-01
#   self-signed        like server, but self-signed
#   exporter3          client, CN=exporter3.flowsec.test and no subjectAltName at all, by ca
#   other-name         CN=other.example, DNS:other.example only, by ca
#   no-ip-san          CN=localhost, DNS:localhost only (no IP SAN), by ca
#   ca2                second CA, trusted by nobody: "CN=flowsec untrusted CA"
#   ca2-server         like server, signed by ca2
#   ca2-client         client CN=exporter1.flowsec.test (same name as exporter1!), by ca2
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir=$1
script=${BASH_SOURCE[0]}

if [ -f "$dir/.complete" ] && [ "$dir/.complete" -nt "$script" ]; then
  echo "make-test-certs: up to date in $dir"
  exit 0
fi

parent=$(dirname -- "$dir")
mkdir -p -- "$parent"
parent=$(cd -- "$parent" && pwd)
tmp=$(mktemp -d "$parent/.test-certs.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
cd -- "$tmp"

# One config for every certificate; `openssl ca` (for chosen validity dates, which
# `openssl x509` cannot set in 3.0) reads its database settings from it too.
cat >openssl.cnf <<EOF
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]

[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1

[ no_ip_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost

[ other_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:other.example

[ exporter1_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:exporter1.flowsec.test

[ exporter2_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:exporter2.flowsec.test

[ cn_only_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ ca ]
default_ca = test_ca
[ test_ca ]
database = $tmp/ca-db/index.txt
new_certs_dir = $tmp/ca-db
certificate = $tmp/ca.pem
private_key = $tmp/ca.key
serial = $tmp/ca-db/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
[ policy_any ]
commonName = supplied
EOF
mkdir ca-db
: >ca-db/index.txt
echo 1000 >ca-db/serial

umask 077
# quiet CMD...: runs CMD, showing its output only when it fails.
quiet() {
  local out
  if ! out=$("$@" 2>&1); then
    printf '%s\n' "$out" >&2
    echo "make-test-certs: failed: $*" >&2
    return 1
  fi
}
key() { quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }

# ca NAME SUBJECT: a self-signed CA
ca() {
  key "$1"
  quiet openssl req -config openssl.cnf -x509 -new -key "$1.key" -subj "$2" -days 3650 \
    -extensions ca_ext -out "$1.pem"
}
# leaf NAME SUBJECT EXTENSIONS ISSUER: a certificate issued by ISSUER now, for 2 years
leaf() {
  key "$1"
  quiet openssl req -config openssl.cnf -x509 -new -key "$1.key" -subj "$2" -days 730 \
    -extensions "$3" -CA "$4.pem" -CAkey "$4.key" -out "$1.pem"
}
# dated NAME START END: a localhost server certificate by ca with chosen validity
dated() {
  key "$1"
  quiet openssl req -config openssl.cnf -new -key "$1.key" -subj "/CN=localhost" -out "$1.csr"
  quiet openssl ca -config openssl.cnf -batch -notext -in "$1.csr" -out "$1.pem" \
    -startdate "$2" -enddate "$3" -extensions server_ext
  rm -f -- "$1.csr"
}

ca ca "/CN=flowsec test CA"
leaf server "/CN=localhost" server_ext ca
leaf exporter1 "/CN=exporter1.flowsec.test" exporter1_ext ca
leaf exporter2 "/CN=exporter2.flowsec.test" exporter2_ext ca
leaf exporter3 "/CN=exporter3.flowsec.test" cn_only_ext ca
dated expired 20200101000000Z 20210101000000Z
dated not-yet-valid 20990101000000Z 21000101000000Z
key self-signed
quiet openssl req -config openssl.cnf -x509 -new -key self-signed.key -subj "/CN=localhost" \
  -days 730 -extensions server_ext -out self-signed.pem
leaf other-name "/CN=other.example" other_ext ca
leaf no-ip-san "/CN=localhost" no_ip_ext ca
ca ca2 "/CN=flowsec untrusted CA"
leaf ca2-server "/CN=localhost" server_ext ca2
leaf ca2-client "/CN=exporter1.flowsec.test" exporter1_ext ca2

rm -rf ca-db openssl.cnf
chmod 600 -- *.key
chmod 644 -- *.pem
touch .complete
chmod 755 .

cd - >/dev/null
rm -rf -- "$dir"
mv -- "$tmp" "$dir"
trap - EXIT
echo "make-test-certs: $(ls "$dir"/*.pem | wc -l) certificates in $dir"
