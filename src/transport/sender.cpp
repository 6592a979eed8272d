#include "transport/sender.hpp"

#include "transport/detail/factories.hpp"

namespace flowsec::transport {

Expected<std::unique_ptr<Sender>, std::string> make_sender(asio::io_context& io,
                                                           const Endpoint& endpoint,
                                                           const SenderOptions& options) {
  switch (endpoint.scheme) {
    case Scheme::udp:
      return detail::make_udp_sender(io, endpoint, options);
    case Scheme::tcp:
    case Scheme::tls:
      return detail::make_stream_sender(io, endpoint, options);
    case Scheme::dtls:
      return detail::make_dtls_sender(io, endpoint, options);
    case Scheme::sctp:
      return detail::make_sctp_sender(io, endpoint, options);
  }
  return unexpected(std::string("unknown transport in ") + endpoint.text);
}

}  // namespace flowsec::transport
