#pragma once
// Test double for transport::Sender: records every message it is given, on the io
// thread, and lets the test play the connection (connected flag, on_connect hook).
// No sockets. `State` is shared so the test keeps access after the Exporter took the
// Sender's ownership.
#include <memory>
#include <vector>

#include "transport/sender.hpp"

namespace flowsec::exporter::test {

struct FakeSenderState {
  transport::Endpoint endpoint;
  std::vector<transport::Message> sent;
  std::function<std::vector<transport::Message>()> hook;
  bool connected = true;
  bool shut_down = false;
  // Plays a (re)connection: the hook's messages go first, as the real senders do.
  void reconnect() {
    connected = true;
    if (hook) {
      for (auto& m : hook()) sent.push_back(std::move(m));
    }
  }
};

class FakeSender final : public transport::Sender {
 public:
  explicit FakeSender(std::shared_ptr<FakeSenderState> s) : s_(std::move(s)) {}
  const transport::Endpoint& endpoint() const override { return s_->endpoint; }
  void send(transport::Message message) override { s_->sent.push_back(std::move(message)); }
  void set_on_connect(std::function<std::vector<transport::Message>()> hook) override {
    s_->hook = std::move(hook);
  }
  void shutdown(std::chrono::milliseconds, std::function<void(bool)> done) override {
    s_->shut_down = true;
    if (done) done(true);
  }
  transport::SenderStats stats() const override {
    transport::SenderStats st;
    st.connected = s_->connected;
    st.messages_sent = s_->sent.size();
    return st;
  }

 private:
  std::shared_ptr<FakeSenderState> s_;
};

inline std::shared_ptr<FakeSenderState> fake_state(transport::Scheme scheme, std::uint16_t port) {
  auto s = std::make_shared<FakeSenderState>();
  s->endpoint.scheme = scheme;
  s->endpoint.host = "127.0.0.1";
  s->endpoint.port = port;
  s->endpoint.text =
      std::string(transport::to_string(scheme)) + "://127.0.0.1:" + std::to_string(port);
  s->connected = !transport::is_stream(scheme);
  return s;
}

}  // namespace flowsec::exporter::test
