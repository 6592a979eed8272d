#include "sinks/ntopng_sink.hpp"

#include <zlib.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "common/bytes.hpp"
#include "common/log.hpp"
#include "common/shared_library.hpp"
#include "ipfix/render.hpp"
#include "transport/endpoint.hpp"

namespace flowsec::sinks {

namespace {

constexpr std::string_view kComponent = "sinks";
constexpr std::string_view kFlowTopic = "flow";
constexpr std::string_view kCounterTopic = "counter";
// CURVE keys in Z85 (ZeroMQ RFC 32): 32 bytes as 40 characters of this alphabet.
constexpr std::size_t kZ85KeyLength = 40;
constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
// Messages queued in ZeroMQ per subscriber before ZMQ_XPUB_NODROP refuses a send
// (ZeroMQ's default, stated): at most 1000 × max_payload_bytes per subscriber.
constexpr int kSendHighWaterMark = 1000;
// How long one send may wait for room in that queue before the message stays held.
constexpr int kSendTimeoutMs = 1000;
// close(): how often to look for a subscriber while waiting for one.
constexpr std::chrono::milliseconds kCloseStep{50};

// libzmq's functions, loaded with the first ntopng output (README: dependencies).
struct ZmqApi {
  SharedLibrary library;
  decltype(&::zmq_errno) errnum = nullptr;
  decltype(&::zmq_strerror) strerror = nullptr;
  decltype(&::zmq_has) has = nullptr;
  decltype(&::zmq_z85_decode) z85_decode = nullptr;
  decltype(&::zmq_curve_keypair) curve_keypair = nullptr;
  decltype(&::zmq_ctx_new) ctx_new = nullptr;
  decltype(&::zmq_ctx_term) ctx_term = nullptr;
  decltype(&::zmq_socket) socket = nullptr;
  decltype(&::zmq_close) close = nullptr;
  decltype(&::zmq_setsockopt) setsockopt = nullptr;
  decltype(&::zmq_getsockopt) getsockopt = nullptr;
  decltype(&::zmq_bind) bind = nullptr;
  decltype(&::zmq_connect) connect = nullptr;
  decltype(&::zmq_send) send = nullptr;
  decltype(&::zmq_recv) recv = nullptr;
  decltype(&::zmq_poll) poll = nullptr;

  [[nodiscard]] std::string error() const { return strerror(errnum()); }
};

Expected<ZmqApi, std::string> load_zmq() {
  auto lib = SharedLibrary::open(FLOWSEC_LIBZMQ_SONAME);
  if (!lib) return unexpected("ntopng output needs libzmq: " + lib.error());
  ZmqApi a{std::move(*lib)};
  const SharedLibrary& l = a.library;
  const Expected<void, std::string> bound[] = {
      l.bind(a.errnum, "zmq_errno"),
      l.bind(a.strerror, "zmq_strerror"),
      l.bind(a.has, "zmq_has"),
      l.bind(a.z85_decode, "zmq_z85_decode"),
      l.bind(a.curve_keypair, "zmq_curve_keypair"),
      l.bind(a.ctx_new, "zmq_ctx_new"),
      l.bind(a.ctx_term, "zmq_ctx_term"),
      l.bind(a.socket, "zmq_socket"),
      l.bind(a.close, "zmq_close"),
      l.bind(a.setsockopt, "zmq_setsockopt"),
      l.bind(a.getsockopt, "zmq_getsockopt"),
      l.bind(a.bind, "zmq_bind"),
      l.bind(a.connect, "zmq_connect"),
      l.bind(a.send, "zmq_send"),
      l.bind(a.recv, "zmq_recv"),
      l.bind(a.poll, "zmq_poll"),
  };
  for (const auto& b : bound) {
    if (!b) return unexpected("ntopng output needs libzmq: " + b.error());
  }
  return a;
}

// Loaded once (thread-safe) and never unloaded: ZeroMQ's I/O threads or a sink worker may
// still be inside libzmq while static destructors run at exit.
const Expected<ZmqApi, std::string>& zmq_api() {
  static const auto* const api = new Expected<ZmqApi, std::string>(load_zmq());
  return *api;
}

template <class T>
void store_le(std::byte* p, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    p[i] = static_cast<std::byte>(v & 0xff);
    v = static_cast<T>(v >> 8);
  }
}

struct ZmqAddress {
  std::string url;  // what zmq_bind / zmq_connect get
  bool ipv6 = false;
};

// "zmq://HOST:PORT" (nProbe's spelling) or "tcp://HOST:PORT" → a ZeroMQ tcp:// address.
// Binding: HOST "*" (or none) is every address and port 0 any free port (ZeroMQ "*").
Expected<ZmqAddress, std::string> zmq_address(const NtopngSinkOptions& o) {
  std::string_view arg = o.endpoint;
  std::string rest;
  if (arg.starts_with("zmq://")) {
    rest = std::string(arg.substr(6));
  } else if (arg.starts_with("tcp://")) {
    rest = std::string(arg.substr(6));
  } else {
    return unexpected("ntopng endpoint \"" + o.endpoint +
                      "\": expected zmq://HOST:PORT or tcp://HOST:PORT");
  }
  if (o.connect) {
    auto ep = transport::parse_export_endpoint("tcp://" + rest);
    if (!ep) return unexpected("ntopng endpoint: " + ep.error());
    const bool v6 = ep->host.find(':') != std::string::npos;
    return ZmqAddress{
        "tcp://" + (v6 ? "[" + ep->host + "]" : ep->host) + ":" + std::to_string(ep->port), v6};
  }
  if (rest.starts_with("*:")) rest.erase(0, 2);  // the transport parser's "all addresses"
  auto ep = transport::parse_listen_endpoint("tcp://" + rest);
  if (!ep) return unexpected("ntopng endpoint: " + ep.error());
  const bool v6 = ep->host.find(':') != std::string::npos;
  const std::string host = ep->host.empty() ? "*" : (v6 ? "[" + ep->host + "]" : ep->host);
  const std::string port = ep->port == 0 ? "*" : std::to_string(ep->port);
  return ZmqAddress{"tcp://" + host + ":" + port, v6 || ep->host.empty()};
}

std::string check_key(const ZmqApi& zmq, const std::string& key) {
  if (key.size() != kZ85KeyLength) {
    return "--zmq-encryption-key: a CURVE public key is " + std::to_string(kZ85KeyLength) +
           " Z85 characters, got " + std::to_string(key.size());
  }
  if (key.find_first_not_of(kZ85Alphabet) != std::string::npos) {
    return "--zmq-encryption-key: not a Z85 key (character '" +
           std::string(1, key[key.find_first_not_of(kZ85Alphabet)]) + "')";
  }
  std::array<std::uint8_t, 32> raw{};
  if (zmq.z85_decode(raw.data(), key.c_str()) == nullptr) {
    return "--zmq-encryption-key: not a valid Z85 key";
  }
  return {};
}

}  // namespace

std::array<std::byte, kNtopngHeaderSize> encode_ntopng_header(const NtopngHeader& h) {
  // ntopng include/ntop_typedefs.h, struct zmq_msg_hdr_v4 with natural alignment:
  //   char url[16]; u_int8_t version, flags; (2 bytes padding)
  //   u_int32_t uncompressed_size, compressed_size;  host order: little-endian on the
  //                                                   x86/ARM hosts ntopng runs on
  //   u_int32_t msg_id, source_id;                    network order (ntohl in ntopng)
  std::array<std::byte, kNtopngHeaderSize> b{};
  const std::size_t n = std::min<std::size_t>(h.topic.size(), 15);  // url stays NUL-terminated
  std::memcpy(b.data(), h.topic.data(), n);
  b[16] = std::byte{kNtopngVersion};
  b[17] = std::byte{h.flags};
  store_le(b.data() + 20, h.uncompressed_size);
  store_le(b.data() + 24, h.payload_size);
  store_be(b.data() + 28, h.msg_id);
  store_be(b.data() + 32, h.source_id);
  return b;
}

std::string check_ntopng_options(const NtopngSinkOptions& options) {
  if (auto a = zmq_address(options); !a) return a.error();
  if (!options.server_public_key.empty()) {
    const auto& loaded = zmq_api();
    if (!loaded) return loaded.error();
    const ZmqApi& zmq = *loaded;
    if (zmq.has("curve") == 0) {
      return "--zmq-encryption-key: this libzmq was built without CURVE support";
    }
    if (auto e = check_key(zmq, options.server_public_key); !e.empty()) return e;
  }
  if (options.max_payload_bytes < 2) return "ntopng: max payload size must be at least 2 bytes";
  if (options.counters && options.counter_interval.count() <= 0) {
    return "ntopng: counter interval must be positive";
  }
  return {};
}

struct NtopngSink::Impl {
  struct Held {
    std::string json;  // "[{...},{...}]", uncompressed
    std::size_t records = 0;
  };

  explicit Impl(const ZmqApi& api) : zmq(api) {}

  const ZmqApi& zmq;
  NtopngSinkOptions opt;
  void* ctx = nullptr;
  void* sock = nullptr;
  std::uint16_t port = 0;
  bool closed = false;

  ipfix::RecordRenderer renderer{ipfix::RenderFormat::ntopng_json};
  std::string building;  // the flow message being filled
  std::size_t building_records = 0;
  std::deque<Held> held;  // complete flow messages not yet sent
  std::size_t held_records = 0;
  std::set<std::string> subscriptions;  // topics subscribed by at least one subscriber
  std::uint32_t next_msg_id = 1;
  std::optional<std::chrono::system_clock::time_point> next_counter;
  std::vector<unsigned char> zbuf;

  std::atomic<std::uint64_t> written{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> errors{0};
  log::RateLimiter error_log{5, std::chrono::seconds(10)};

  ~Impl() {
    if (sock != nullptr) {
      const int zero = 0;
      zmq.setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
      zmq.close(sock);
    }
    if (ctx != nullptr) zmq.ctx_term(ctx);
  }

  void report(std::string_view text) {
    std::uint64_t suppressed = 0;
    if (!error_log.allow(suppressed)) return;
    std::string line = "output ntopng: " + std::string(text);
    if (suppressed > 0) line += " (" + std::to_string(suppressed) + " similar lines suppressed)";
    log::error(kComponent, line);
  }

  // A SUB socket matches by prefix (ZeroMQ RFC 29): subscribing to "" or "f" gets "flow".
  [[nodiscard]] bool subscribed(std::string_view topic) const {
    return std::any_of(subscriptions.begin(), subscriptions.end(),
                       [&](const std::string& s) { return topic.starts_with(s); });
  }

  // XPUB hands up subscriptions as messages: 0x01 + topic on subscribe, 0x00 + topic
  // when the last subscriber to it unsubscribes or disconnects (zmq_socket(3) ZMQ_XPUB;
  // duplicates are filtered, ZMQ_XPUB_VERBOSE off).
  void read_subscriptions() {
    std::array<char, 256> buf{};
    for (;;) {
      const int n = zmq.recv(sock, buf.data(), buf.size(), ZMQ_DONTWAIT);
      if (n < 0) {
        if (zmq.errnum() != EAGAIN && zmq.errnum() != EINTR) {
          ++errors;
          report("reading subscriptions: " + zmq.error());
        }
        return;
      }
      if (n < 1) continue;
      const std::string topic(buf.data() + 1,
                              std::min<std::size_t>(static_cast<std::size_t>(n), buf.size()) - 1);
      if (buf[0] == 1) {
        subscriptions.insert(topic);
      } else if (buf[0] == 0) {
        subscriptions.erase(topic);
      }
    }
  }

  // Sends one message: the header frame with ZMQ_SNDMORE, then the payload frame. False
  // (nothing sent, message id not used) when ZeroMQ has no room (ZMQ_XPUB_NODROP).
  bool send(std::string_view topic, std::string_view json) {
    NtopngHeader h;
    h.topic = topic;
    h.uncompressed_size = static_cast<std::uint32_t>(json.size());
    h.msg_id = next_msg_id;
    h.source_id = opt.source_id;
    std::string_view payload = json;
    if (opt.compress) {
      // ntopng inflates with zlib's uncompress(): a zlib (RFC 1950) stream.
      uLongf len = compressBound(static_cast<uLong>(json.size()));
      zbuf.resize(len);
      const int rc = compress2(zbuf.data(), &len, reinterpret_cast<const Bytef*>(json.data()),
                               static_cast<uLong>(json.size()), Z_DEFAULT_COMPRESSION);
      if (rc == Z_OK) {
        h.flags = kNtopngFlagCompressed;
        payload = std::string_view(reinterpret_cast<const char*>(zbuf.data()), len);
      } else {
        ++errors;
        report("zlib compress2 failed (" + std::to_string(rc) + "); message sent uncompressed");
      }
    }
    h.payload_size = static_cast<std::uint32_t>(payload.size());
    const auto header = encode_ntopng_header(h);
    if (zmq.send(sock, header.data(), header.size(), ZMQ_SNDMORE) < 0) {
      if (zmq.errnum() != EAGAIN) {
        ++errors;
        report("send: " + zmq.error());
      }
      return false;
    }
    // Once the first frame is accepted ZeroMQ takes the rest of the message (atomic
    // multipart delivery); a failure here is not a full queue.
    if (zmq.send(sock, payload.data(), payload.size(), 0) < 0) {
      ++errors;
      report("send: " + zmq.error());
      return false;
    }
    ++next_msg_id;
    return true;
  }

  void finish_message() {
    if (building_records == 0) return;
    building.push_back(']');
    held.push_back(Held{std::move(building), building_records});
    held_records += building_records;
    building.clear();
    building_records = 0;
    // Bounded hold: the oldest message goes first.
    while (held_records > kMaxHeldRecords && held.size() > 1) {
      const std::size_t n = held.front().records;
      held.pop_front();
      held_records -= n;
      failed += n;
      report("no subscriber to \"flow\" or send queue full: dropped " + std::to_string(n) +
             " held records (at most " + std::to_string(kMaxHeldRecords) + " are held)");
    }
  }

  // A JSON array of flow objects per message, cut at record boundaries so it holds at
  // most max_payload_bytes (ntopng reads into a fixed buffer); a record larger than
  // that goes alone.
  void add_record(std::string_view rec) {
    if (building_records > 0 && building.size() + 1 + rec.size() + 1 > opt.max_payload_bytes) {
      finish_message();
    }
    building.push_back(building_records == 0 ? '[' : ',');
    building.append(rec);
    ++building_records;
  }

  void send_held() {
    if (held.empty() || !subscribed(kFlowTopic)) return;
    while (!held.empty()) {
      if (!send(kFlowTopic, held.front().json)) return;
      written += held.front().records;
      held_records -= held.front().records;
      held.pop_front();
    }
  }

  // Keys read by ntopng's counter parser (sFlow-interface-counter style).
  void send_counters() {
    const NtopngInterfaceCounters c = opt.counters();
    std::string json = "{";
    if (!c.device.is_unspecified() && !c.device.is_v6()) {  // ntopng: an IPv4 address
      json += "\"deviceIP\":\"" + c.device.to_string() + "\",";
    }
    json += "\"ifIndex\":" + std::to_string(c.if_index);
    json += ",\"ifName\":";
    ipfix::append_json_string(json, c.name);
    json += ",\"ifInOctets\":" + std::to_string(c.in_bytes);
    json += ",\"ifInPackets\":" + std::to_string(c.in_packets);
    json += ",\"ifInErrors\":" + std::to_string(c.in_errors);
    json += ",\"ifOutOctets\":0,\"ifOutPackets\":0}";
    send(kCounterTopic, json);
  }
};

NtopngSink::NtopngSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NtopngSink::~NtopngSink() = default;

Expected<std::unique_ptr<NtopngSink>, std::string> NtopngSink::open(NtopngSinkOptions options) {
  if (auto e = check_ntopng_options(options); !e.empty()) return unexpected(e);
  const auto& loaded = zmq_api();
  if (!loaded) return unexpected(loaded.error());
  const ZmqApi& zmq = *loaded;
  const auto addr = zmq_address(options);
  auto im = std::make_unique<Impl>(zmq);
  im->opt = std::move(options);
  const NtopngSinkOptions& o = im->opt;
  im->ctx = zmq.ctx_new();
  if (im->ctx == nullptr) return unexpected("ntopng: zmq_ctx_new: " + zmq.error());
  im->sock = zmq.socket(im->ctx, ZMQ_XPUB);
  if (im->sock == nullptr) return unexpected("ntopng: zmq_socket: " + zmq.error());

  const int one = 1;
  const int hwm = kSendHighWaterMark;
  const int sndtimeo = kSendTimeoutMs;
  const int linger = static_cast<int>(o.linger.count());
  const int ipv6 = addr->ipv6 ? 1 : 0;
  bool ok = zmq.setsockopt(im->sock, ZMQ_XPUB_NODROP, &one, sizeof one) == 0 &&
            zmq.setsockopt(im->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) == 0 &&
            zmq.setsockopt(im->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo) == 0 &&
            zmq.setsockopt(im->sock, ZMQ_LINGER, &linger, sizeof linger) == 0 &&
            zmq.setsockopt(im->sock, ZMQ_IPV6, &ipv6, sizeof ipv6) == 0;
  if (ok && !o.server_public_key.empty()) {
    // CURVE (ZeroMQ RFC 26): we are the client, ntopng the server holding the secret
    // key whose public half we were given; our own key pair is made here.
    std::array<char, kZ85KeyLength + 1> pub{};
    std::array<char, kZ85KeyLength + 1> sec{};
    ok = zmq.curve_keypair(pub.data(), sec.data()) == 0 &&
         zmq.setsockopt(im->sock, ZMQ_CURVE_SERVERKEY, o.server_public_key.c_str(),
                        kZ85KeyLength) == 0 &&
         zmq.setsockopt(im->sock, ZMQ_CURVE_PUBLICKEY, pub.data(), kZ85KeyLength) == 0 &&
         zmq.setsockopt(im->sock, ZMQ_CURVE_SECRETKEY, sec.data(), kZ85KeyLength) == 0;
  }
  if (!ok) return unexpected("ntopng: socket options: " + zmq.error());

  if (o.connect) {
    if (zmq.connect(im->sock, addr->url.c_str()) != 0) {
      return unexpected("ntopng: connect " + addr->url + ": " + zmq.error());
    }
  } else {
    if (zmq.bind(im->sock, addr->url.c_str()) != 0) {
      return unexpected("ntopng: bind " + o.endpoint + ": " + zmq.error());
    }
    std::array<char, 256> last{};
    std::size_t len = last.size();
    if (zmq.getsockopt(im->sock, ZMQ_LAST_ENDPOINT, last.data(), &len) == 0) {
      const std::string_view ep(last.data());
      const auto colon = ep.rfind(':');
      if (colon != std::string_view::npos) {
        std::from_chars(ep.data() + colon + 1, ep.data() + ep.size(), im->port);
      }
    }
  }
  return std::unique_ptr<NtopngSink>(new NtopngSink(std::move(im)));
}

void NtopngSink::write(const ipfix::RecordBatch& batch) {
  Impl& im = *impl_;
  if (im.closed || batch.size() == 0) return;
  im.read_subscriptions();
  im.renderer.render_each(batch, [&](std::string_view rec) { im.add_record(rec); });
  im.finish_message();
  im.send_held();
}

void NtopngSink::tick(std::chrono::system_clock::time_point now) {
  Impl& im = *impl_;
  if (im.closed) return;
  im.read_subscriptions();
  im.send_held();
  if (!im.opt.counters) return;
  // The first counter message at the first tick, then one per counter_interval.
  if (im.next_counter && now < *im.next_counter) return;
  im.next_counter = now + im.opt.counter_interval;
  if (im.subscribed(kCounterTopic)) im.send_counters();
}

void NtopngSink::close() {
  Impl& im = *impl_;
  if (im.closed) return;
  im.closed = true;
  const ZmqApi& zmq = im.zmq;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + im.opt.linger;
  im.finish_message();
  // Wait (at most linger) for a subscriber to "flow" and room to send what is held.
  for (;;) {
    im.read_subscriptions();
    // A send waiting for room must not outlast linger either.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const int sndtimeo = static_cast<int>(
        std::clamp<std::chrono::milliseconds::rep>(left.count(), 0, kSendTimeoutMs));
    zmq.setsockopt(im.sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    im.send_held();
    const auto now = std::chrono::steady_clock::now();
    if (im.held.empty() || now >= deadline) break;
    zmq_pollitem_t item{im.sock, 0, ZMQ_POLLIN, 0};
    const auto wait = std::min<std::chrono::steady_clock::duration>(kCloseStep, deadline - now);
    zmq.poll(
        &item, 1,
        static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()));
  }
  const bool all_sent = im.held.empty();
  if (!all_sent) {
    im.failed += im.held_records;
    im.report("no subscriber to \"flow\" within " + std::to_string(im.opt.linger.count()) +
              " ms: " + std::to_string(im.held_records) + " records not delivered");
    im.held.clear();
    im.held_records = 0;
  }
  // ZMQ_LINGER: zmq_ctx_term() waits for queued messages to be written out, at most the
  // rest of linger; returning before that means they all were.
  const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::max<std::chrono::steady_clock::duration>(deadline - std::chrono::steady_clock::now(),
                                                    std::chrono::steady_clock::duration::zero()));
  const int linger = static_cast<int>(remaining.count());
  zmq.setsockopt(im.sock, ZMQ_LINGER, &linger, sizeof linger);
  zmq.close(im.sock);
  im.sock = nullptr;
  const auto term_start = std::chrono::steady_clock::now();
  zmq.ctx_term(im.ctx);
  im.ctx = nullptr;
  const bool flushed =
      im.next_msg_id == 1 || std::chrono::steady_clock::now() - term_start < remaining;
  if (all_sent && !flushed) {
    ++im.errors;
    im.report("queued messages may not have reached the subscriber before linger expired");
  }
  delivered_ = all_sent && flushed;
}

SinkStats NtopngSink::stats() const {
  SinkStats s;
  s.records_written = impl_->written.load();
  s.records_failed = impl_->failed.load();
  s.errors = impl_->errors.load();
  return s;
}

std::uint16_t NtopngSink::local_port() const {
  return impl_->port;
}

}  // namespace flowsec::sinks
