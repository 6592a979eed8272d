#pragma once
// Reads packets from a pcap or pcapng file (libpcap's offline reader handles
// both, and nanosecond pcaps). One reader per file, one thread at a time.
// The span returned by next() is valid until the following call. For the probe's
// packet loop use open_capture() (capture_source.hpp): batches, filters, directories.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "capture/raw_packet.hpp"
#include "common/result.hpp"

namespace flowsec::capture {

class PcapFile {
 public:
  // Error string names the file and libpcap's reason.
  static Expected<PcapFile, std::string> open(const std::string& path);
  PcapFile(PcapFile&&) noexcept;
  PcapFile& operator=(PcapFile&&) noexcept;
  ~PcapFile();

  [[nodiscard]] int link_type() const;
  // Next packet, or nullopt at the end of the file (or on a read error: see error()).
  std::optional<RawPacket> next();
  // Non-empty when reading stopped early because the file is damaged.
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  struct Handle;
  explicit PcapFile(std::unique_ptr<Handle> h);
  std::unique_ptr<Handle> handle_;
  std::string error_;
};

}  // namespace flowsec::capture
