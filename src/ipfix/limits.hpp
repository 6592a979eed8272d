#pragma once
// Every hard cap on attacker-controlled input, in one place (SPEC §9).
// Decoders check these before allocating, so no allocation is ever sized by
// a length read from the wire beyond these bounds.
#include <cstddef>
#include <cstdint>

namespace flowsec::ipfix::limits {

// RFC 7011 §3.1: the Length field is 16 bits; the header alone is 16 bytes.
inline constexpr std::size_t kMaxMessageSize = 65535;
inline constexpr std::size_t kMinIpfixMessageSize = 16;
// Default largest message we build for datagram transports (fits a 1500-byte path MTU).
inline constexpr std::size_t kDefaultDatagramMessageSize = 1400;

// Templates one (session, observation domain) may hold at once. Template ids are
// 256..65535 (RFC 7011 §3.4.1), so this also bounds memory per session.
inline constexpr std::size_t kMaxTemplatesPerSession = 4096;
// Fields in one template. A 65535-byte message could in theory carry ~16k,
// no real exporter sends more than a few hundred.
inline constexpr std::size_t kMaxFieldsPerTemplate = 512;
// One variable-length field can never exceed the message it is in.
inline constexpr std::size_t kMaxVariableLength = kMaxMessageSize;

// Concurrent sessions per listener (SPEC §3, configurable down from this).
inline constexpr std::size_t kMaxSessionsPerListener = 4096;

// NetFlow v9 (RFC 3954 §5.1): the header count is per-packet records; a
// datagram cannot hold more than this many 4-byte-or-larger records.
inline constexpr std::size_t kMaxV9RecordsPerPacket = kMaxMessageSize / 4;
// NetFlow v5: at most 30 records per datagram (Cisco's format definition).
inline constexpr std::size_t kMaxV5Records = 30;

// sFlow v5: caps on the counts the datagram announces (sFlow v5 spec, §4).
inline constexpr std::size_t kMaxSflowSamples = 1024;
inline constexpr std::size_t kMaxSflowRecordsPerSample = 256;
// Largest sampled packet header we parse (typical agents send 128 bytes).
inline constexpr std::size_t kMaxSflowHeaderBytes = 1024;

// Stream framing: bytes buffered while waiting for the rest of a message.
inline constexpr std::size_t kMaxStreamBuffer = 2 * kMaxMessageSize;

}  // namespace flowsec::ipfix::limits
