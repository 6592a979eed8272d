#!/usr/bin/env bash
# The README's first command: install, build, and run the main job on bundled data.
#
# The main job is secure flow transport. This script:
#  1. generates a private CA, a collector certificate (localhost) and an exporter certificate;
#  2. starts a flowsec collector on tls://127.0.0.1 that requires a client certificate
#     (mutual TLS, RFC 7011 §11) and writes JSON lines;
#  3. runs a flowsec probe on a bundled capture (real HTTP, TLS and DNS traffic from nDPI's
#     test set) exporting IPFIX over TLS to it, and replays a bundled IPFIX stream from
#     softflowd into it with `openssl s_client` as a third-party TLS exporter;
#  4. stops the collector (SIGTERM flushes its files) and shows the records: each carries the
#     exporter's authenticated certificate identity (EXPORTER_TLS_IDENTITY).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target flowsec
flowsec=$PWD/build/release/src/app/flowsec
work=$(mktemp -d)
collector_pid=
cleanup() {
  [ -n "$collector_pid" ] && kill "$collector_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "=== 1. certificates (scripts/make-test-certs.sh $work/certs)"
scripts/make-test-certs.sh "$work/certs" >/dev/null
certs=$work/certs

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo
echo "=== 2. collector: mutual TLS on 127.0.0.1:$port, JSON lines under $work/flows"
set -x
"$flowsec" -i none -n none --collector-port "tls://127.0.0.1:$port" \
  --tls-cert "$certs/server.pem" --tls-priv-key "$certs/server.key" --tls-ca "$certs/ca.pem" \
  -P "$work/flows" -D j -b 1 2>"$work/collector.log" &
{ set +x; } 2>/dev/null
collector_pid=$!
for _ in $(seq 50); do
  grep -q "listening on" "$work/collector.log" && break
  sleep 0.1
done

echo
echo "=== 3a. probe: a bundled pcap → flows → IPFIX over TLS, with a client certificate"
set -x
"$flowsec" -i tests/data/flow/google_ssl.pcap -n "tls://localhost:$port" -T "@NTOPNG@" \
  --tls-ca "$certs/ca.pem" --tls-cert "$certs/exporter1.pem" --tls-priv-key "$certs/exporter1.key"
{ set +x; } 2>/dev/null

echo
echo "=== 3b. a third-party exporter: softflowd's IPFIX stream sent through openssl s_client"
set -x
openssl s_client -connect "127.0.0.1:$port" -quiet -no_ign_eof -CAfile "$certs/ca.pem" \
  -cert "$certs/exporter2.pem" -key "$certs/exporter2.key" \
  <tests/data/ipfix/softflowd_1kxun_tcp.ipfix 2>/dev/null
{ set +x; } 2>/dev/null

echo
echo "=== 3c. an exporter without a client certificate is refused (and counted)"
openssl s_client -connect "127.0.0.1:$port" -quiet -no_ign_eof -CAfile "$certs/ca.pem" \
  <tests/data/ipfix/softflowd_1kxun_tcp.ipfix >/dev/null 2>&1 || true

sleep 0.5
kill -TERM "$collector_pid"
wait "$collector_pid"
collector_pid=
echo
echo "=== 4. what the collector logged"
cat "$work/collector.log"
echo
echo "=== records written ($(cat "$work"/flows/*/*/*/*/*.json | wc -l) in total); the probe's flows:"
# awk reads every line (no early exit, so no SIGPIPE under pipefail) and prints the first 3.
awk '/"EXPORTER_TLS_IDENTITY":"CN=exporter1/ && /IPV4_SRC/ && n++ < 3' "$work"/flows/*/*/*/*/*.json
echo "... and softflowd's, relayed by openssl s_client:"
awk '/"EXPORTER_TLS_IDENTITY":"CN=exporter2/ && /IPV4_SRC/ && n++ < 3' "$work"/flows/*/*/*/*/*.json
