// NtopngSubscriber: plays ntopng's part in tests of the ntopng output (SPEC §6
// `--ntopng`): a ZeroMQ SUB socket on topics "flow" and "counter" that reads messages
// the way ntopng's ZMQ collector does and checks them on the way.
//
//   NtopngSubscriber sub(NtopngSubscriberOptions::connect_to("tcp://127.0.0.1:5556"));
//   NtopngSubscriber srv(NtopngSubscriberOptions::bind_to("tcp://127.0.0.1:*",
//                                                        keys.secret_key));  // CURVE server
//   srv.port();                                  // the port bound
//   sub.wait_for_flows(298, 5s, [&] { sink.tick(now()); });  // receive, bounded
//   sub.flows();     // every flow object received, in order (JSON, keys "8", "1", ...)
//   sub.counters();  // every "counter" object
//   sub.messages();  // the header of every message (topic, flags, sizes, ids)
//   sub.problems();  // what ntopng would have choked on; empty when all was well
//
// Checks per message (ntopng include/ntop_typedefs.h struct zmq_msg_hdr_v4, 36 bytes:
// url[16], version, flags, 2 padding bytes, uncompressed_size and compressed_size in
// little-endian, msg_id and source_id in network order): two frames, header first;
// version 4; topic NUL-terminated and "flow" or "counter"; payload frame size ==
// compressed_size; flag 0x04: zlib-inflates to exactly uncompressed_size bytes, else
// the payload is uncompressed_size bytes; JSON parses ("flow": an array of objects,
// "counter": an object); message ids increase by exactly 1 from the first one seen.
// Each failed check is one line in problems(); nothing throws after construction.
// Every wait is bounded by its timeout. One thread at a time.
#pragma once

#include <zlib.h>
#include <zmq.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace flowsec::test {

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;
};

// A fresh CURVE key pair (zmq_curve_keypair); throws if libzmq has no CURVE.
inline CurveKeyPair curve_keypair() {
  std::array<char, 41> pub{};
  std::array<char, 41> sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0) {
    throw std::runtime_error(std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()));
  }
  return {pub.data(), sec.data()};
}

struct NtopngSubscriberOptions {
  std::string endpoint;          // "tcp://HOST:PORT"; binding also "tcp://HOST:*"
  bool bind = false;             // true: bind (ntopng "-i tcp://*:PORT c"), else connect
  std::string curve_secret_key;  // Z85: act as CURVE server (ntopng's key); empty: plain

  static NtopngSubscriberOptions connect_to(std::string endpoint, std::string secret = {}) {
    NtopngSubscriberOptions o;
    o.endpoint = std::move(endpoint);
    o.curve_secret_key = std::move(secret);
    return o;
  }
  static NtopngSubscriberOptions bind_to(std::string endpoint, std::string secret = {}) {
    NtopngSubscriberOptions o = connect_to(std::move(endpoint), std::move(secret));
    o.bind = true;
    return o;
  }
};

struct NtopngMessageInfo {
  std::string topic;
  std::uint8_t version = 0;
  std::uint8_t flags = 0;
  std::uint32_t uncompressed_size = 0;
  std::uint32_t compressed_size = 0;
  std::uint32_t msg_id = 0;
  std::uint32_t source_id = 0;
  std::size_t records = 0;  // flow objects in the message ("flow" only)
};

class NtopngSubscriber {
 public:
  using Idle = std::function<void()>;
  static constexpr std::chrono::milliseconds kPollStep{50};

  // Throws std::runtime_error when the socket cannot be set up.
  explicit NtopngSubscriber(const NtopngSubscriberOptions& options) {
    ctx_ = zmq_ctx_new();
    sock_ = ctx_ != nullptr ? zmq_socket(ctx_, ZMQ_SUB) : nullptr;
    if (sock_ == nullptr) fail("zmq_socket");
    const int zero = 0;
    check(zmq_setsockopt(sock_, ZMQ_LINGER, &zero, sizeof zero), "ZMQ_LINGER");
    if (!options.curve_secret_key.empty()) {
      const int one = 1;
      check(zmq_setsockopt(sock_, ZMQ_CURVE_SERVER, &one, sizeof one), "ZMQ_CURVE_SERVER");
      check(zmq_setsockopt(sock_, ZMQ_CURVE_SECRETKEY, options.curve_secret_key.c_str(),
                           options.curve_secret_key.size()),
            "ZMQ_CURVE_SECRETKEY");
    }
    for (const char* topic : {"flow", "counter"}) {
      check(zmq_setsockopt(sock_, ZMQ_SUBSCRIBE, topic, std::strlen(topic)), "ZMQ_SUBSCRIBE");
    }
    if (options.bind) {
      check(zmq_bind(sock_, options.endpoint.c_str()), "zmq_bind " + options.endpoint);
      std::array<char, 256> last{};
      std::size_t len = last.size();
      check(zmq_getsockopt(sock_, ZMQ_LAST_ENDPOINT, last.data(), &len), "ZMQ_LAST_ENDPOINT");
      const std::string ep(last.data());
      port_ = static_cast<std::uint16_t>(std::stoi(ep.substr(ep.rfind(':') + 1)));
    } else {
      check(zmq_connect(sock_, options.endpoint.c_str()), "zmq_connect " + options.endpoint);
    }
  }
  ~NtopngSubscriber() { close(); }
  NtopngSubscriber(const NtopngSubscriber&) = delete;
  NtopngSubscriber& operator=(const NtopngSubscriber&) = delete;

  // The port bound (bind mode), else 0.
  [[nodiscard]] std::uint16_t port() const { return port_; }

  // Receives until done() holds or `timeout` passes; `idle`, if given, runs about every
  // kPollStep meanwhile (e.g. to drive a sink's tick()). Returns done().
  bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                  const Idle& idle = {}) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      if (idle) idle();
      poll(std::min<std::chrono::milliseconds>(
          kPollStep, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)));
    }
    return true;
  }
  bool wait_for_flows(std::size_t n, std::chrono::milliseconds timeout, const Idle& idle = {}) {
    return wait_until([&] { return flows_.size() >= n; }, timeout, idle);
  }
  bool wait_for_counters(std::size_t n, std::chrono::milliseconds timeout, const Idle& idle = {}) {
    return wait_until([&] { return counters_.size() >= n; }, timeout, idle);
  }
  // Receives whatever arrives during `d`.
  void receive_for(std::chrono::milliseconds d, const Idle& idle = {}) {
    wait_until([] { return false; }, d, idle);
  }

  [[nodiscard]] const std::vector<nlohmann::json>& flows() const { return flows_; }
  [[nodiscard]] const std::vector<nlohmann::json>& counters() const { return counters_; }
  [[nodiscard]] const std::vector<NtopngMessageInfo>& messages() const { return messages_; }
  [[nodiscard]] const std::vector<std::string>& problems() const { return problems_; }

  void close() {
    if (sock_ != nullptr) zmq_close(sock_);
    if (ctx_ != nullptr) zmq_ctx_term(ctx_);
    sock_ = nullptr;
    ctx_ = nullptr;
  }

 private:
  [[noreturn]] static void fail(const std::string& what) {
    throw std::runtime_error("ntopng subscriber: " + what + ": " + zmq_strerror(zmq_errno()));
  }
  static void check(int rc, const std::string& what) {
    if (rc != 0) fail(what);
  }
  static std::uint32_t le32(const unsigned char* p) {
    return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
           std::uint32_t{p[3]} << 24;
  }
  static std::uint32_t be32(const unsigned char* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 |
           std::uint32_t{p[3]};
  }

  // Reads one frame; nullopt when none is ready. `more` receives ZMQ_RCVMORE.
  std::optional<std::string> frame(int flags, bool& more) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock_, flags) < 0) {
      zmq_msg_close(&msg);
      return std::nullopt;
    }
    std::string data(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
    more = zmq_msg_more(&msg) != 0;
    zmq_msg_close(&msg);
    return data;
  }

  void poll(std::chrono::milliseconds wait) {
    zmq_pollitem_t item{sock_, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, static_cast<long>(wait.count())) <= 0) return;
    for (;;) {
      bool more = false;
      auto header = frame(ZMQ_DONTWAIT, more);
      if (!header) return;
      if (!more) {
        problems_.push_back("a message of one frame (" + std::to_string(header->size()) +
                            " bytes): the payload frame is missing");
        continue;
      }
      auto payload = frame(0, more);
      while (more) {  // extra frames: drain them, report
        frame(0, more);
        problems_.push_back("more than two frames in a message");
      }
      if (payload) handle(*header, *payload);
    }
  }

  void handle(const std::string& header, const std::string& payload) {
    if (header.size() != 36) {
      problems_.push_back("header frame of " + std::to_string(header.size()) +
                          " bytes, zmq_msg_hdr_v4 is 36");
      return;
    }
    const auto* h = reinterpret_cast<const unsigned char*>(header.data());
    NtopngMessageInfo info;
    if (std::memchr(h, 0, 16) == nullptr) problems_.push_back("topic not NUL-terminated");
    info.topic = std::string(header.data(), strnlen(header.data(), 16));
    info.version = h[16];
    info.flags = h[17];
    info.uncompressed_size = le32(h + 20);
    info.compressed_size = le32(h + 24);
    info.msg_id = be32(h + 28);
    info.source_id = be32(h + 32);
    const std::string where = "message " + std::to_string(info.msg_id) + " (" + info.topic + ")";
    if (info.version != 4) problems_.push_back(where + ": version " + std::to_string(info.version));
    if (!messages_.empty() && info.msg_id != messages_.back().msg_id + 1) {
      problems_.push_back(where + ": id after " + std::to_string(messages_.back().msg_id));
    }
    if (info.compressed_size != payload.size()) {
      problems_.push_back(where + ": compressed_size " + std::to_string(info.compressed_size) +
                          " but a payload of " + std::to_string(payload.size()));
    }
    std::string json;
    if ((info.flags & 0x04) != 0) {
      json.resize(info.uncompressed_size);
      uLongf len = info.uncompressed_size;
      const int rc = uncompress(reinterpret_cast<Bytef*>(json.data()), &len,
                                reinterpret_cast<const Bytef*>(payload.data()), payload.size());
      if (rc != Z_OK || len != info.uncompressed_size) {
        problems_.push_back(where + ": zlib uncompress failed (" + std::to_string(rc) + ")");
      }
      json.resize(len);
    } else {
      json = payload;
      if (info.uncompressed_size != payload.size()) {
        problems_.push_back(where + ": uncompressed_size " +
                            std::to_string(info.uncompressed_size) + " but a payload of " +
                            std::to_string(payload.size()));
      }
    }
    const auto parsed = nlohmann::json::parse(json, nullptr, false);
    if (parsed.is_discarded()) {
      problems_.push_back(where + ": payload is not JSON");
    } else if (info.topic == "flow") {
      if (!parsed.is_array()) {
        problems_.push_back(where + ": flow payload is not an array");
      } else {
        for (const auto& f : parsed) {
          if (!f.is_object()) problems_.push_back(where + ": a flow that is not an object");
          flows_.push_back(f);
          ++info.records;
        }
      }
    } else if (info.topic == "counter") {
      if (!parsed.is_object()) problems_.push_back(where + ": counter is not an object");
      counters_.push_back(parsed);
    } else {
      problems_.push_back(where + ": unexpected topic");
    }
    messages_.push_back(std::move(info));
  }

  void* ctx_ = nullptr;
  void* sock_ = nullptr;
  std::uint16_t port_ = 0;
  std::vector<nlohmann::json> flows_;
  std::vector<nlohmann::json> counters_;
  std::vector<NtopngMessageInfo> messages_;
  std::vector<std::string> problems_;
};

}  // namespace flowsec::test
