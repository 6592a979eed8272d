#pragma once
// Internal: one factory per transport family, called by make_sender() and
// make_listener() (sender.cpp, listener.cpp). Not part of the module's API.
#include <asio/io_context.hpp>
#include <memory>
#include <string>

#include "transport/listener.hpp"
#include "transport/sender.hpp"

namespace flowsec::transport::detail {

using SenderResult = Expected<std::unique_ptr<Sender>, std::string>;
using ListenerResult = Expected<std::unique_ptr<Listener>, std::string>;

SenderResult make_udp_sender(asio::io_context& io, const Endpoint& e, const SenderOptions& o);
// tcp and tls
SenderResult make_stream_sender(asio::io_context& io, const Endpoint& e, const SenderOptions& o);
SenderResult make_dtls_sender(asio::io_context& io, const Endpoint& e, const SenderOptions& o);
SenderResult make_sctp_sender(asio::io_context& io, const Endpoint& e, const SenderOptions& o);

ListenerResult make_udp_listener(asio::io_context& io, const Endpoint& e, const ListenerOptions& o,
                                 ListenerHandler& h);
// tcp and tls
ListenerResult make_stream_listener(asio::io_context& io, const Endpoint& e,
                                    const ListenerOptions& o, ListenerHandler& h);
ListenerResult make_dtls_listener(asio::io_context& io, const Endpoint& e, const ListenerOptions& o,
                                  ListenerHandler& h);
ListenerResult make_sctp_listener(asio::io_context& io, const Endpoint& e, const ListenerOptions& o,
                                  ListenerHandler& h);

}  // namespace flowsec::transport::detail
