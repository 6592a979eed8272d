#include "transport/sighup.hpp"

#include <csignal>
#include <string>

#include "common/log.hpp"

namespace flowsec::transport {

SighupReloader::SighupReloader(asio::io_context& io, std::vector<Listener*> listeners)
    : signals_(io, SIGHUP), listeners_(std::move(listeners)) {
  wait();
}

void SighupReloader::stop() {
  asio::error_code ignored;
  signals_.cancel(ignored);
}

void SighupReloader::wait() {
  signals_.async_wait([this](const asio::error_code& ec, int) {
    if (ec) return;  // cancelled
    for (Listener* l : listeners_) {
      if (!is_secure(l->endpoint().scheme)) continue;
      if (auto r = l->reload_tls(); r) {
        ++reloads_;
        log::info("tls", "SIGHUP: reloaded certificate, key and CA for " + l->endpoint().text);
      } else {
        ++failures_;
        log::error("tls",
                   "SIGHUP: kept the old certificate for " + l->endpoint().text + ": " + r.error());
      }
    }
    wait();
  });
}

}  // namespace flowsec::transport
