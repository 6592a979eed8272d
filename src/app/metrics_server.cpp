// HTTP side of --metrics: see metrics_server.hpp for the contract. One Connection per
// accepted socket, alive as long as one of its handlers is pending; the server keeps
// plain pointers to the open ones only to close them on close().
#include "app/metrics_server.hpp"

#include <array>
#include <asio/ip/tcp.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <charconv>
#include <string>
#include <unordered_set>
#include <utility>

#include "common/ip_address.hpp"
#include "common/log.hpp"

namespace flowsec::app {
namespace {

using asio::ip::tcp;

tl::unexpected<std::string> bad_address(std::string_view arg, std::string_view why) {
  return unexpected("--metrics '" + std::string(arg) + "': " + std::string(why));
}

bool parse_port(std::string_view text, std::uint16_t& port) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), value);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size()) return false;
  if (value == 0 || value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

std::string response(std::string_view status, std::string_view content_type, std::string_view body,
                     bool head_only, std::string_view extra_header = {}) {
  std::string out;
  out.reserve(160 + (head_only ? 0 : body.size()));
  out += "HTTP/1.1 ";
  out += status;
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\n";
  out += extra_header;
  out += "Connection: close\r\n\r\n";
  if (!head_only) out += body;
  return out;
}

std::string plain(std::string_view status, std::string_view body, bool head_only,
                  std::string_view extra_header = {}) {
  return response(status, "text/plain; charset=utf-8", body, head_only, extra_header);
}

}  // namespace

Expected<MetricsAddress, std::string> parse_metrics_address(std::string_view arg) {
  MetricsAddress out;
  out.text = std::string(arg);
  if (arg.empty()) return bad_address(arg, "empty; expected [ADDR:]PORT");
  std::string_view port_text = arg;
  if (arg.front() == '[') {
    const auto close = arg.find(']');
    if (close == std::string_view::npos) return bad_address(arg, "missing ']' after IPv6 address");
    const auto host = arg.substr(1, close - 1);
    const auto ip = IpAddress::parse(host);
    if (!ip || !ip->is_v6()) return bad_address(arg, "not an IPv6 address inside [ ]");
    if (close + 1 >= arg.size() || arg[close + 1] != ':') {
      return bad_address(arg, "expected ':PORT' after ']'");
    }
    out.host = std::string(host);
    port_text = arg.substr(close + 2);
  } else if (const auto colon = arg.rfind(':'); colon != std::string_view::npos) {
    if (arg.find(':') != colon) {
      return bad_address(arg, "an IPv6 address needs brackets: [ADDR]:PORT");
    }
    const auto host = arg.substr(0, colon);
    if (host.empty()) {
      return bad_address(arg,
                         "empty address before ':' (give just the port to listen on all "
                         "addresses)");
    }
    if (host == "localhost") {
      out.host = "127.0.0.1";
    } else {
      const auto ip = IpAddress::parse(host);
      if (!ip || ip->is_v6()) {
        return bad_address(
            arg, "'" + std::string(host) + "' is not an IPv4 address (names are not resolved)");
      }
      out.host = std::string(host);
    }
    port_text = arg.substr(colon + 1);
  }
  if (!parse_port(port_text, out.port)) {
    return bad_address(arg, "port '" + std::string(port_text) + "' is not a number 1-65535");
  }
  return out;
}

RequestState request_state(std::string_view received) {
  // CRLF per RFC 9112 §2.1; a bare LF is accepted as line end (§2.2).
  auto end = received.find("\r\n\r\n");
  std::size_t terminator = 4;
  const auto lf = received.find("\n\n");
  if (lf != std::string_view::npos && (end == std::string_view::npos || lf < end)) {
    end = lf;
    terminator = 2;
  }
  if (end != std::string_view::npos) {
    return end + terminator <= kMaxRequestBytes ? RequestState::complete : RequestState::too_large;
  }
  return received.size() >= kMaxRequestBytes ? RequestState::too_large : RequestState::incomplete;
}

std::string http_too_large_response() {
  return plain("431 Request Header Fields Too Large", "request head too large\n", false);
}

std::string http_response(std::string_view request_head, const MetricsRegistry& registry) {
  // Request line, RFC 9112 §3: method SP request-target SP HTTP-version.
  auto line = request_head.substr(0, request_head.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    return plain("400 Bad Request", "bad request line\n", false);
  }
  const auto method = line.substr(0, sp1);
  auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto version = line.substr(sp2 + 1);
  if (target.empty() || version.substr(0, 7) != "HTTP/1.") {
    return plain("400 Bad Request", "bad request line\n", false);
  }
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) {
    return plain("405 Method Not Allowed", "only GET and HEAD\n", false, "Allow: GET, HEAD\r\n");
  }
  target = target.substr(0, target.find('?'));  // Prometheus may add params; there are none
  if (target != "/metrics") return plain("404 Not Found", "not found; try /metrics\n", head_only);
  return response("200 OK", kMetricsContentType, registry.collect(), head_only);
}

class Connection;

struct MetricsServer::Impl : std::enable_shared_from_this<MetricsServer::Impl> {
  Impl(asio::io_context& io_context, const MetricsRegistry& metrics,
       const MetricsServerOptions& opts)
      : io(io_context), acceptor(io_context), retry(io_context), registry(metrics), options(opts) {}

  void accept();
  void close();

  asio::io_context& io;
  tcp::acceptor acceptor;
  asio::steady_timer retry;
  const MetricsRegistry& registry;
  MetricsServerOptions options;
  std::uint16_t port = 0;
  bool closed = false;
  std::unordered_set<Connection*> connections;
  log::RateLimiter accept_errors{3, std::chrono::minutes(1)};
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<MetricsServer::Impl> server, tcp::socket socket)
      : server_(std::move(server)), socket_(std::move(socket)), timer_(server_->io) {
    server_->connections.insert(this);
  }
  ~Connection() { server_->connections.erase(this); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start() {
    timer_.expires_after(server_->options.request_timeout);
    timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->stop();
    });
    read();
  }

  void stop() {
    asio::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
  }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(chunk_),
                            [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
                              self->on_read(ec, n);
                            });
  }

  void on_read(const asio::error_code& ec, std::size_t n) {
    if (ec || server_->closed) {
      stop();
      return;
    }
    received_.append(chunk_.data(), n);
    switch (request_state(received_)) {
      case RequestState::incomplete:
        read();
        return;
      case RequestState::too_large:
        respond(http_too_large_response());
        return;
      case RequestState::complete:
        respond(http_response(received_, server_->registry));
        return;
    }
  }

  void respond(std::string text) {
    response_ = std::move(text);
    received_.clear();
    asio::async_write(socket_, asio::buffer(response_),
                      [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                        if (ec) {
                          self->stop();
                          return;
                        }
                        // Half-close, then read until the client closes (or the timer
                        // fires): closing with unread input would send a RST that can
                        // destroy the response before the client has read it.
                        asio::error_code ignored;
                        self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
                        self->drain();
                      });
  }

  void drain() {
    socket_.async_read_some(asio::buffer(chunk_),
                            [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                              if (ec || self->server_->closed) {
                                self->stop();
                                return;
                              }
                              self->drain();
                            });
  }

  std::shared_ptr<MetricsServer::Impl> server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::array<char, 2048> chunk_{};
  std::string received_;
  std::string response_;
};

void MetricsServer::Impl::accept() {
  acceptor.async_accept(
      [self = shared_from_this()](const asio::error_code& ec, tcp::socket socket) {
        if (self->closed) return;
        if (ec) {
          // Out of descriptors and the like: wait a little instead of spinning.
          std::uint64_t suppressed = 0;
          if (self->accept_errors.allow(suppressed)) {
            log::warning("metrics", "accept failed: " + ec.message());
          }
          self->retry.expires_after(std::chrono::milliseconds(100));
          self->retry.async_wait([self](const asio::error_code& wait_ec) {
            if (!wait_ec && !self->closed) self->accept();
          });
          return;
        }
        if (self->connections.size() >= self->options.max_connections) {
          asio::error_code ignored;
          socket.close(ignored);
        } else {
          std::make_shared<Connection>(self, std::move(socket))->start();
        }
        self->accept();
      });
}

void MetricsServer::Impl::close() {
  if (closed) return;
  closed = true;
  asio::error_code ignored;
  acceptor.close(ignored);
  retry.cancel();
  for (Connection* c : connections) c->stop();
}

Expected<std::unique_ptr<MetricsServer>, std::string> MetricsServer::start(
    asio::io_context& io, const MetricsAddress& address, const MetricsRegistry& registry,
    const MetricsServerOptions& options) {
  auto impl = std::make_shared<Impl>(io, registry, options);
  auto& acceptor = impl->acceptor;
  asio::error_code ec;
  auto bind = [&](const tcp::endpoint& ep, bool dual_stack) {
    asio::error_code ignored;
    acceptor.close(ignored);
    ec.clear();
    acceptor.open(ep.protocol(), ec);
    if (!ec && dual_stack) acceptor.set_option(asio::ip::v6_only(false), ec);
    // A restarted process binds its port again while old connections sit in TIME_WAIT.
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  };
  if (address.host.empty()) {
    bind(tcp::endpoint(asio::ip::address_v6::any(), address.port), true);
    if (ec) bind(tcp::endpoint(asio::ip::address_v4::any(), address.port), false);
  } else {
    const auto ip = asio::ip::make_address(address.host, ec);
    if (ec) {
      return unexpected("--metrics '" + address.text + "': bad address '" + address.host + "'");
    }
    bind(tcp::endpoint(ip, address.port), false);
  }
  if (ec) {
    return unexpected("cannot listen on --metrics '" + address.text + "': " + ec.message());
  }
  impl->port = acceptor.local_endpoint(ec).port();
  impl->accept();
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  close();
}

std::uint16_t MetricsServer::port() const {
  return impl_->port;
}

void MetricsServer::close() {
  if (impl_) impl_->close();
}

}  // namespace flowsec::app
