#!/usr/bin/env bash
# Regenerates the seed corpora under tests/fuzz/corpus/ from the real captures in
# tests/data/ (tshark extracts the UDP payloads). Run by hand when fixtures change;
# the seeds are checked in so the replay tests need no tshark.
#   netflow_v5, netflow_v9, ipfix, sflow: one UDP payload per file, split by version
#   stream_framer: the IPFIX files (a TCP/TLS stream is exactly an IPFIX file), with a chunk-size byte
#   session: all payloads of one capture, each prefixed by a 2-byte length
#   packet: frames of tests/data/packets/ (converted to pcap by editcap), prefixed by a byte
#           naming their link type as fuzz_packet.cpp indexes them; bit 7 = strip tunnels
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/fuzz/corpus
rm -rf "$out"/{netflow_v5,netflow_v9,ipfix,sflow,stream_framer,session,packet}
mkdir -p "$out"/{netflow_v5,netflow_v9,ipfix,sflow,stream_framer,session,packet}

python3 - "$out" <<'PY'
import subprocess, sys, pathlib, hashlib
out = pathlib.Path(sys.argv[1])
seen = set()
def save(kind, blob):
    h = hashlib.sha1(blob).hexdigest()[:16]
    if (kind, h) in seen: return
    seen.add((kind, h))
    (out / kind / h).write_bytes(blob)
for cap in sorted(pathlib.Path("tests/data/export").rglob("*.pcap")):
    hexes = subprocess.run(["tshark", "-r", str(cap), "-Y", "udp", "-T", "fields", "-e", "udp.payload"],
                           capture_output=True, text=True, check=True).stdout.split()
    payloads = [bytes.fromhex(x.replace(":", "")) for h in hexes for x in h.split(",") if x]
    session = b""
    for p in payloads:
        if len(p) < 4: continue
        v16 = int.from_bytes(p[:2], "big"); v32 = int.from_bytes(p[:4], "big")
        kind = {5: "netflow_v5", 9: "netflow_v9", 10: "ipfix"}.get(v16)
        if v32 == 5: kind = "sflow"
        if kind is None: continue
        save(kind, p)
        if len(session) < 60000:
            session += len(p).to_bytes(2, "big") + p
    if session:
        save("session", b"\x00" + session)  # datagram store
for f in sorted(pathlib.Path("tests/data/ipfix").glob("*.ipfix")):
    data = f.read_bytes()
    save("stream_framer", b"\x07" + data[:65536])
    save("stream_framer", b"\x00" + data[:4096])
    # the IPFIX file's messages, one seed each, for the IPFIX target
    at = 0
    n = 0
    while at + 4 <= len(data) and n < 20:
        ln = int.from_bytes(data[at + 2:at + 4], "big")
        if ln < 16: break
        save("ipfix", data[at:at + ln]); at += ln; n += 1
    # the stream as a session over a stream transport (withdrawals honoured)
    sess = b"\x01"; at = 0
    while at + 4 <= len(data) and len(sess) < 60000:
        ln = int.from_bytes(data[at + 2:at + 4], "big")
        if ln < 16: break
        sess += ln.to_bytes(2, "big") + data[at:at + ln]; at += ln
    save("session", sess)
import struct, tempfile
LINK_INDEX = {0: 0, 1: 1, 12: 2, 101: 3, 108: 4, 113: 5, 228: 6, 229: 7, 276: 8}
for cap in sorted(pathlib.Path("tests/data/packets").iterdir()):
    with tempfile.NamedTemporaryFile(suffix=".pcap") as tmp:
        subprocess.run(["editcap", "-F", "pcap", str(cap), tmp.name], check=True, capture_output=True)
        data = pathlib.Path(tmp.name).read_bytes()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    link = struct.unpack(endian + "I", data[20:24])[0]
    if link not in LINK_INDEX: continue
    at, n = 24, 0
    while at + 16 <= len(data) and n < 8:
        incl = struct.unpack(endian + "I", data[at + 8:at + 12])[0]
        frame = data[at + 16:at + 16 + incl]
        at += 16 + incl; n += 1
        save("packet", bytes([LINK_INDEX[link] | 0x80]) + frame)
        save("packet", bytes([LINK_INDEX[link]]) + frame)
for kind in ["netflow_v5", "netflow_v9", "ipfix", "sflow", "stream_framer", "session", "packet"]:
    print(kind, len(list((out / kind).iterdir())))
PY
