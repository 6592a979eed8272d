#pragma once
// SIGHUP reloads certificate, key and CA of every TLS/DTLS listener without
// dropping established sessions (SPEC §3.5): new sessions use the new files.
// A reload that fails (unreadable file, key not matching) keeps the old
// material and logs which file was wrong. Lives on the io_context thread; the
// signal is caught through asio::signal_set, never in a raw handler.
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <cstdint>
#include <vector>

#include "transport/listener.hpp"

namespace flowsec::transport {

class SighupReloader {
 public:
  // The listeners must outlive the reloader.
  SighupReloader(asio::io_context& io, std::vector<Listener*> listeners);
  [[nodiscard]] std::uint64_t reloads() const { return reloads_; }
  [[nodiscard]] std::uint64_t failures() const { return failures_; }
  void stop();

 private:
  void wait();
  asio::signal_set signals_;
  std::vector<Listener*> listeners_;
  std::uint64_t reloads_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace flowsec::transport
