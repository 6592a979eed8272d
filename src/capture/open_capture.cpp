// open_capture(): decides what -i names (SPEC §2) and opens it.
#include <net/if.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "capture/capture_source.hpp"
#include "capture/sources.hpp"
#include "common/log.hpp"

namespace flowsec::capture {
namespace detail {

std::string quoted(const char* what, const std::string& name) {
  return std::string(what) + " '" + name + "'";
}

}  // namespace detail

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A name that cannot be an interface is reported as a missing file, not a missing device.
bool looks_like_path(std::string_view name) {
  return name.find('/') != std::string_view::npos || name.size() >= IFNAMSIZ ||
         ends_with(name, ".pcap") || ends_with(name, ".pcapng") || ends_with(name, ".cap") ||
         ends_with(name, ".gz");
}

}  // namespace

Expected<std::unique_ptr<CaptureSource>, std::string> open_capture(const CaptureOptions& options) {
  using detail::quoted;
  const std::string& name = options.interface;
  if (name.empty()) return unexpected(std::string("no capture source given (-i)"));
  if (options.snaplen == 0 || options.snaplen > kMaxSnaplen) {
    return unexpected("snaplen " + std::to_string(options.snaplen) + " out of range (1.." +
                      std::to_string(kMaxSnaplen) + ")");
  }
  if (name == "-") return detail::open_offline(options, SourceKind::standard_input);

  struct stat st {};
  if (::stat(name.c_str(), &st) == 0) {
    return detail::open_offline(options,
                                S_ISDIR(st.st_mode) ? SourceKind::directory : SourceKind::file);
  }
  const int stat_errno = errno;
  if (stat_errno != ENOENT || looks_like_path(name)) {
    return unexpected(quoted("file", name) + ": " + std::strerror(stat_errno));
  }

  if (options.live_backend == LiveBackend::libpcap) {
    auto r = detail::open_pcap_live(options);
    if (r) log::info("capture", "capturing on " + (*r)->description());
    return r;
  }
  auto ring = detail::open_af_packet(options);
  if (ring) {
    log::info("capture", "capturing on " + (*ring)->description());
    return std::move(*ring);
  }
  if (ring.error().fatal || options.live_backend == LiveBackend::af_packet) {
    return unexpected(std::move(ring.error().message));
  }
  log::warning("capture", ring.error().message + "; falling back to libpcap");
  auto r = detail::open_pcap_live(options);
  if (r) log::info("capture", "capturing on " + (*r)->description());
  return r;
}

}  // namespace flowsec::capture
