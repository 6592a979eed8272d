#include "ipfix/stream_framer.hpp"

namespace flowsec::ipfix {

Result<std::size_t> StreamFramer::check_header(const std::byte* p) {
  // RFC 7011 §10.4 (TCP, and TLS over it): messages follow each other in the stream, each
  // starting with Version 10 and a Length that covers at least the 16-byte header (§3.1).
  // Anything else means the stream lost framing: there is no way to resynchronise, so the
  // framer stays failed and the session is closed.
  const std::uint16_t version = load_be<std::uint16_t>(p);
  const std::size_t length = load_be<std::uint16_t>(p + 2);
  if (version != 10) {
    failed_ = true;
    error_ = Error{Errc::stream_bad_version, static_cast<std::uint32_t>(offset_)};
    return tl::unexpected(error_);
  }
  if (length < limits::kMinIpfixMessageSize) {
    failed_ = true;
    error_ = Error{Errc::stream_bad_length, static_cast<std::uint32_t>(offset_)};
    return tl::unexpected(error_);
  }
  return length;
}

Result<void> StreamFramer::finish() const {
  if (failed_) return tl::unexpected(error_);
  if (!buf_.empty()) return fail(Errc::stream_truncated, offset_);
  return {};
}

}  // namespace flowsec::ipfix
