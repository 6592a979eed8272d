#!/usr/bin/env bash
# The README's first command: install, build, and run the main job on bundled data.
# Until the collector and probe modes exist, the main job decodes the bundled exporter
# captures (NetFlow v5, v9, IPFIX, sFlow from real routers and probes; tests/data/README.md)
# and an IPFIX file, and prints their flow records as JSON lines with nProbe field names.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target flowsec
flowsec=build/release/src/app/flowsec
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

show() {
  local title=$1
  shift
  echo
  echo "=== $title"
  echo "    flowsec decode -D j $*"
  "$flowsec" decode -D j "$@" >"$out/records.json"
  head -n 5 "$out/records.json"
}

show "NetFlow v5 (akvorado fixture, a real router)" tests/data/export/akvorado/netflow_nfv5.pcap
show "NetFlow v9 with options templates (Cisco, pmacct fixture)" \
  tests/data/export/pmacct/101-NFv9-CISCO-cust_primitives_traffic-00.pcap
show "IPFIX with RFC 5103 biflow elements (ipfixprobe)" \
  tests/data/export/akvorado-merged/netflow_ipfixprobe-template+data.pcap
show "IPFIX over IPv6 transport (Cisco)" \
  tests/data/export/pmacct/104-IPFIXv10-IPv6-CISCO-sampling_option_traffic-00.pcap
show "sFlow v5 flow samples (sampled packet headers parsed into flows)" \
  tests/data/export/akvorado/sflow_data-sflow-ipv4-data.pcap
show "IPFIX file / TCP stream from softflowd" tests/data/ipfix/softflowd_1kxun_tcp.ipfix

echo
echo "=== All bundled captures, text format, totals only"
"$flowsec" decode tests/data/export/*/*.pcap tests/data/ipfix/*.ipfix >/dev/null
