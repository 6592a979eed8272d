#include "transport/listener.hpp"

#include "transport/detail/factories.hpp"

namespace flowsec::transport {

Expected<std::unique_ptr<Listener>, std::string> make_listener(asio::io_context& io,
                                                               const Endpoint& endpoint,
                                                               const ListenerOptions& options,
                                                               ListenerHandler& handler) {
  switch (endpoint.scheme) {
    case Scheme::udp:
      return detail::make_udp_listener(io, endpoint, options, handler);
    case Scheme::tcp:
    case Scheme::tls:
      return detail::make_stream_listener(io, endpoint, options, handler);
    case Scheme::dtls:
      return detail::make_dtls_listener(io, endpoint, options, handler);
    case Scheme::sctp:
      return detail::make_sctp_listener(io, endpoint, options, handler);
  }
  return unexpected(std::string("unknown transport in ") + endpoint.text);
}

}  // namespace flowsec::transport
