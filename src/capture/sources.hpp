#pragma once
// Internal to the capture module: the concrete sources behind open_capture(). Same
// contract as capture_source.hpp; callers outside src/capture use open_capture().
#include <memory>
#include <string>
#include <vector>

#include "capture/capture_source.hpp"

namespace flowsec::capture::detail {

// A file, the files of a directory (in name order) or stdin ("-").
[[nodiscard]] Expected<std::unique_ptr<CaptureSource>, std::string> open_offline(
    const CaptureOptions& options, SourceKind kind);

struct LiveOpenError {
  std::string message;
  bool fatal = true;  // false: the ring could not be set up, libpcap may still work
};
[[nodiscard]] Expected<std::unique_ptr<CaptureSource>, LiveOpenError> open_af_packet(
    const CaptureOptions& options);
[[nodiscard]] Expected<std::unique_ptr<CaptureSource>, std::string> open_pcap_live(
    const CaptureOptions& options);

// "interface 'eth0'", "file 'x.pcap'": the prefix of every error line.
[[nodiscard]] std::string quoted(const char* what, const std::string& name);

}  // namespace flowsec::capture::detail
