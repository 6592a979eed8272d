#pragma once
// `flowsec decode [-D t|j|c|b] [-w OUT] FILE...`: prints (or, with -D b, writes
// as an IPFIX file) the flow records held in capture files of exporter traffic
// (pcap/pcapng: every UDP datagram that is NetFlow v5/v9, IPFIX or sFlow v5) and
// in IPFIX files (RFC 5655). A debugging and demonstration tool in the spirit of
// ipfixDump; the collector (later) uses the same decoders on live sockets.
//
// Each exporter (source address and port) gets its own template store, as a
// collector would give it a session; template lifetimes follow the capture's
// timestamps, so a capture decodes the same way on every run. Malformed
// messages are skipped, reported on stderr with reason and offset, and counted
// in the closing summary. Exit status: 0 when every file could be read, 1
// otherwise, 2 on a usage error.
namespace flowsec::app {
int decode_command(int argc, char** argv);
}
