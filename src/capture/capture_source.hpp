#pragma once
// Packet sources for the probe (SPEC §2 -i/-f/-s, §5 "Capture"): pcap/pcapng files,
// directories of them, stdin, and live interfaces (AF_PACKET TPACKET_V3 ring, or
// libpcap as the fallback).
//
// Contract:
//  - open_capture() does all start-up work (open files, compile the filter, bind the
//    socket, map the ring) and fails with one line naming the source and the reason:
//    "interface 'eth9': No such device", "filter 'tcp prot 80': syntax error".
//  - One thread reads: next_batch(), stats(), progress() and error() are called from
//    that thread only. stop() may be called from any thread or from a signal handler.
//  - Packets come in batches so the probe loop pays one virtual call and no allocation
//    per batch. A batch's spans point into the source (the kernel ring, or an arena for
//    files); they stay valid until the next call to next_batch() or the source's end.
//  - No exceptions. Reading ends with ReadStatus::end (input exhausted or stop()) or
//    ReadStatus::error (error() says why); after either, next_batch() keeps returning it.
//  - Every packet carries its own link type: a directory may mix Ethernet, raw IP,
//    Linux cooked and BSD loopback files.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "capture/raw_packet.hpp"
#include "common/result.hpp"

namespace flowsec::capture {

inline constexpr std::uint32_t kDefaultSnaplen = 1600;  // SPEC §2 -s
inline constexpr std::uint32_t kMaxSnaplen = 262144;    // libpcap's largest

struct PacketBatch {
  static constexpr std::size_t kCapacity = 256;
  std::array<RawPacket, kCapacity> packets{};
  std::size_t size = 0;
  [[nodiscard]] std::span<const RawPacket> view() const { return {packets.data(), size}; }
};

enum class ReadStatus : std::uint8_t {
  packets,  // the batch holds at least one packet
  idle,     // live only: nothing arrived within the poll timeout; run timers, call again
  end,      // no more packets: all files read, or stop() was called
  error,    // reading failed; error() names the source and the reason
};

enum class LiveBackend : std::uint8_t {
  automatic,  // AF_PACKET TPACKET_V3, libpcap when the ring cannot be set up
  af_packet,  // AF_PACKET only; a setup failure is an open error
  libpcap,    // libpcap live capture only
};

struct CaptureOptions {
  std::string interface;                    // -i: FILE, DIR, "-" (stdin) or an interface name
  std::string bpf_filter;                   // -f: tcpdump syntax; empty = everything
  std::uint32_t snaplen = kDefaultSnaplen;  // -s: bytes kept per packet (files too)
  bool promiscuous = true;
  LiveBackend live_backend = LiveBackend::automatic;
  std::size_t ring_bytes = std::size_t{32} << 20;  // AF_PACKET ring / libpcap buffer
  std::uint32_t block_timeout_ms = 100;  // a partly filled ring block is handed over after this
};

struct CaptureStats {
  std::uint64_t received = 0;                    // packets handed out by next_batch()
  std::uint64_t filtered_out = 0;                // rejected by the BPF filter, where known (files)
  std::optional<std::uint64_t> kernel_drops;     // live: ring / socket buffer full
  std::optional<std::uint64_t> interface_drops;  // live, libpcap: dropped by the NIC/driver
  std::uint64_t damaged_files = 0;  // directory: files skipped as unreadable or damaged
};

// Files only (stdin and live have no total).
struct Progress {
  std::uint64_t bytes_read = 0;   // whole files done + position in the current one
  std::uint64_t bytes_total = 0;  // sum of the sizes at open time
  std::size_t file_index = 0;     // 0-based index of the file being read
  std::size_t file_count = 0;
};

enum class SourceKind : std::uint8_t { file, directory, standard_input, af_packet, libpcap_live };

class CaptureSource {
 public:
  virtual ~CaptureSource() = default;
  CaptureSource(const CaptureSource&) = delete;
  CaptureSource& operator=(const CaptureSource&) = delete;

  // Replaces the batch's contents. Live sources wait at most about block_timeout_ms.
  [[nodiscard]] virtual ReadStatus next_batch(PacketBatch& batch) = 0;
  // Counters so far (for live sources this asks the kernel).
  [[nodiscard]] virtual CaptureStats stats() = 0;
  [[nodiscard]] virtual std::optional<Progress> progress() const { return std::nullopt; }

  // Any thread, or a signal handler: the reader returns ReadStatus::end soon (a live
  // reader blocked in poll() is woken at once). Packets already batched are not lost.
  void stop() noexcept {
    stop_requested_.store(true, std::memory_order_release);
    wake();
  }

  [[nodiscard]] SourceKind kind() const { return kind_; }
  // "file 'x.pcap'", "interface 'eth0' (AF_PACKET TPACKET_V3)", ...
  [[nodiscard]] const std::string& description() const { return description_; }
  // Non-empty after ReadStatus::error; for a directory, the last damaged file's reason.
  [[nodiscard]] const std::string& error() const { return error_; }

 protected:
  CaptureSource(SourceKind kind, std::string description)
      : kind_(kind), description_(std::move(description)) {}
  [[nodiscard]] bool stop_requested() const {
    return stop_requested_.load(std::memory_order_acquire);
  }
  // Async-signal-safe wake-up of a blocked reader; default: nothing blocks.
  virtual void wake() noexcept {}

  SourceKind kind_;
  std::string description_;
  std::string error_;

 private:
  std::atomic<bool> stop_requested_{false};
};

// Opens the source named by options.interface (SPEC §2 -i): "-" is stdin; an existing
// directory or file is read offline; anything else is a live interface.
[[nodiscard]] Expected<std::unique_ptr<CaptureSource>, std::string> open_capture(
    const CaptureOptions& options);

}  // namespace flowsec::capture
