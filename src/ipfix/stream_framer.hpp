#pragma once
// Cuts an IPFIX byte stream (TCP, TLS, SCTP stream or an IPFIX file,
// RFC 7011 §10 / RFC 5655) into messages using each header's Length field.
//
// Contract: sans-I/O; one framer per stream session, used by one thread at a
// time. feed() takes chunks of any size and calls on_message once per complete
// message, in stream order; the span passed is valid only during that call (it
// points into the chunk when the message arrived whole, else into the
// framer's buffer, which never holds more than one partial message, at most
// limits::kMaxStreamBuffer bytes). on_message must not call back into the same
// framer. A header that cannot start an IPFIX message fails the framer for
// good: every later feed() returns the same error and the caller closes the
// session (SPEC §9). Error offsets are stream offsets (low 32 bits).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/bytes.hpp"
#include "ipfix/errors.hpp"
#include "ipfix/limits.hpp"

namespace flowsec::ipfix {

class StreamFramer {
 public:
  // Appends a chunk of any size; calls on_message(Bytes message) once per complete message, in
  // order. On a header whose version is not 10 → Errc::stream_bad_version, length outside
  // 16..65535 → Errc::stream_bad_length, offset = stream offset of that header.
  template <class Fn>
  Result<void> feed(Bytes chunk, Fn&& on_message);
  // Errc::stream_truncated if a partial message is pending (or the framer's error if it failed).
  [[nodiscard]] Result<void> finish() const;
  // Bytes held of the next, incomplete message.
  [[nodiscard]] std::size_t buffered() const { return buf_.size(); }
  // Stream offset where the next undelivered message starts: the bytes of every message
  // delivered so far. After a failure, the offset of the bad header.
  [[nodiscard]] std::uint64_t stream_offset() const { return offset_; }

 private:
  static constexpr std::size_t kPrefix = 4;  // Version + Length (RFC 7011 §3.1)

  // Length of the message whose header starts at p (kPrefix bytes), or the error.
  Result<std::size_t> check_header(const std::byte* p);

  std::vector<std::byte> buf_;
  std::uint64_t offset_ = 0;
  bool failed_ = false;
  Error error_{};
};

template <class Fn>
Result<void> StreamFramer::feed(Bytes chunk, Fn&& on_message) {
  if (failed_) return tl::unexpected(error_);
  Bytes in = chunk;

  // Complete the message started by earlier chunks.
  if (!buf_.empty()) {
    if (buf_.size() < kPrefix) {
      const std::size_t n = std::min(kPrefix - buf_.size(), in.size());
      buf_.insert(buf_.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
      in = in.subspan(n);
      if (buf_.size() < kPrefix) return {};
    }
    auto length = check_header(buf_.data());
    if (!length) return tl::unexpected(length.error());
    const std::size_t n = std::min(*length - buf_.size(), in.size());
    buf_.insert(buf_.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
    in = in.subspan(n);
    if (buf_.size() < *length) return {};
    on_message(Bytes(buf_));
    offset_ += *length;
    buf_.clear();
  }

  // Messages that arrive whole are handed over in place, without a copy.
  while (in.size() >= kPrefix) {
    auto length = check_header(in.data());
    if (!length) return tl::unexpected(length.error());
    if (in.size() < *length) break;
    on_message(in.first(*length));
    offset_ += *length;
    in = in.subspan(*length);
  }
  // The rest is shorter than its message (< 65535 bytes, header already checked if
  // complete): keep it.
  buf_.insert(buf_.end(), in.begin(), in.end());
  return {};
}

}  // namespace flowsec::ipfix
