#pragma once
// NtopngSink: the `--ntopng zmq://HOST:PORT` output (alias `--zmq tcp://HOST:PORT`,
// SPEC §6): flows published to ntopng over ZeroMQ, as nProbe publishes them.
//
// Wire format (what ntopng's ZMQ collector reads; ntopng include/ntop_typedefs.h
// `zmq_msg_hdr_v4`). Every message is two ZMQ frames:
//   1. a 36-byte header: topic (16 bytes, NUL-padded: "flow" or "counter"),
//      version 4 (u8), flags (u8: 0x04 = payload zlib-compressed), 2 zero bytes,
//      uncompressed payload size (u32, little-endian), payload size as sent (u32,
//      little-endian), message id (u32, big-endian; 1, 2, ... per sink, over both
//      topics), source id (u32, big-endian);
//   2. the payload: JSON text, zlib-compressed (RFC 1950 stream) unless
//      `--zmq-disable-compression`.
// Topic "flow": a JSON array of flow objects keyed by numeric field ids — the NetFlow
// v9 field type of each element (IANA ids as they are; ntop's enterprise-35632
// elements 57472 + id; ipfix::ElementInfo::v9_type), values rendered as in the JSON
// lines output (ipfix/render.hpp); the exporter's address as EXPORTER_IPV4_ADDRESS
// (130) / EXPORTER_IPV6_ADDRESS (131). Elements without a v9 type keep their nProbe
// name (or E<enterprise>_<id>) as key. A message holds at most
// max_payload_bytes of uncompressed JSON (ntopng reads messages into a fixed buffer).
// Topic "counter": every counter_interval, one JSON object with the interface
// statistics of `counters()` (sFlow-counter style keys ntopng parses: deviceIP,
// ifIndex, ifName, ifInOctets, ifInPackets, ifInErrors, ...).
//
// Sockets. By default the sink binds an XPUB socket on HOST:PORT (ntopng connects:
// `ntopng -i tcp://flowsec:PORT`); `connect` (--zmq-probe-mode) connects out instead,
// to an ntopng that binds (`-i tcp://*:PORT c`), for probes behind NAT. XPUB sees
// subscriptions: flows are held until a subscriber to "flow" is present (bounded by
// the sink itself: at most kMaxHeldRecords records; beyond that the oldest held
// message is dropped), and ZMQ_XPUB_NODROP makes a full send queue visible instead
// of a silent drop (the message stays held and is retried on the next write or
// tick), so nothing is lost while ntopng is away within the bounds, and what is
// dropped is counted (records_failed). Counter messages are sent only while a
// subscriber to "counter" is present; they are never held.
// CURVE (--zmq-encryption-key, RFC 26/CurveZMQ): ntopng holds the server secret key;
// the sink is the CURVE client with ZMQ_CURVE_SERVERKEY = the given Z85 public key
// (40 characters) and a key pair of its own made at start-up, whichever side binds.
//
// Contract: a Sink (sink.hpp), driven by its QueuedSink worker; tick() retries held
// flows and sends the counter message when due (at the first tick, then once per
// counter_interval of tick()'s `now`). close() sends what is held and
// waits at most `linger` for ZeroMQ to hand it over; delivered() says whether it did.
// Message ids count the messages actually sent, so a subscriber sees 1, 2, 3, ...
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/ip_address.hpp"
#include "common/result.hpp"
#include "sinks/sink.hpp"

namespace flowsec::sinks {

// What topic "counter" reports (the probe's capture, or the collector's input).
struct NtopngInterfaceCounters {
  std::string name;  // capture interface or file, or "collector"
  IpAddress device;  // address of the observing device; unspecified: left out
  std::uint32_t if_index = 0;
  std::uint64_t in_packets = 0;
  std::uint64_t in_bytes = 0;
  std::uint64_t in_errors = 0;  // drops and malformed input
};

struct NtopngSinkOptions {
  std::string endpoint;           // "zmq://HOST:PORT" or "tcp://HOST:PORT"; HOST may be "*"
  bool connect = false;           // --zmq-probe-mode
  std::string server_public_key;  // --zmq-encryption-key (Z85); empty: no encryption
  bool compress = true;           // false: --zmq-disable-compression
  std::uint32_t source_id = 0;    // header source id
  std::size_t max_payload_bytes = 32 * 1024;  // uncompressed JSON per "flow" message
  std::chrono::seconds counter_interval{5};
  std::function<NtopngInterfaceCounters()> counters;  // empty: no "counter" messages
  std::chrono::milliseconds linger{10000};            // close(): time to hand over the rest
};

// The header frame of one message (ntopng's zmq_msg_hdr_v4, see above).
inline constexpr std::size_t kNtopngHeaderSize = 36;
inline constexpr std::uint8_t kNtopngVersion = 4;
inline constexpr std::uint8_t kNtopngFlagCompressed = 0x04;
struct NtopngHeader {
  std::string_view topic;  // at most 15 characters are kept (NUL-terminated url[16])
  std::uint8_t flags = 0;
  std::uint32_t uncompressed_size = 0;
  std::uint32_t payload_size = 0;  // bytes of the payload frame as sent
  std::uint32_t msg_id = 0;
  std::uint32_t source_id = 0;
};
[[nodiscard]] std::array<std::byte, kNtopngHeaderSize> encode_ntopng_header(const NtopngHeader& h);

// Start-up checks (URL syntax, key length and alphabet, CURVE support in libzmq):
// an empty string when fine, otherwise one line saying what is wrong. With a key it loads
// libzmq (see open()).
[[nodiscard]] std::string check_ntopng_options(const NtopngSinkOptions& options);

class NtopngSink final : public Sink {
 public:
  // Flow records held at most while no subscriber to "flow" is present or the send
  // queue is full (the same bound as a QueuedSink's default queue).
  static constexpr std::size_t kMaxHeldRecords = std::size_t{1} << 20;

  // Creates the socket and binds or connects; fails with one line (e.g. address in use,
  // or libzmq missing: it is loaded by the first open(), not at program start).
  [[nodiscard]] static Expected<std::unique_ptr<NtopngSink>, std::string> open(
      NtopngSinkOptions options);
  ~NtopngSink() override;
  NtopngSink(const NtopngSink&) = delete;
  NtopngSink& operator=(const NtopngSink&) = delete;

  [[nodiscard]] std::string name() const override { return "ntopng"; }
  void write(const ipfix::RecordBatch& batch) override;
  void tick(std::chrono::system_clock::time_point now) override;
  void close() override;
  [[nodiscard]] SinkStats stats() const override;

  // The port bound (useful with port 0); 0 when connecting.
  [[nodiscard]] std::uint16_t local_port() const;
  // True once close() sent every record to a subscriber and ZeroMQ wrote its queue out
  // before `linger` ran out (zmq_ctx_term returned early). With linger 0 it is false
  // unless nothing was ever queued.
  [[nodiscard]] bool delivered() const override { return delivered_; }

 private:
  struct Impl;
  explicit NtopngSink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> delivered_{false};
};

}  // namespace flowsec::sinks
