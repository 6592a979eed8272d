// flowgen: a load generator for collector benchmarks (bench/collector_bench.sh).
// Sends prepared IPFIX or NetFlow v9 messages at a chosen rate over udp, tcp or tls.
//
//   flowgen --to 127.0.0.1:PORT [--proto ipfix|v9] [--transport udp|tcp|tls]
//           [--rate DATAGRAMS_PER_S] [--duration S] [--records-per-message N]
//           [--exporters K] [--ca FILE]
//
// Records use a typical 10-field IPv4 template (the one of bench_codec: addresses, ports,
// protocol, TCP flags, octets, packets, flowStart/EndMilliseconds; 47 bytes a record), 25
// records a message by default as in the peer measurement of docs PEERS.md (1195-byte IPFIX
// datagrams). Every exporter (--exporters K) is its own UDP socket (distinct source port)
// or its own connection, with its own sequence numbers, and sends its template first and
// then once a second (UDP; template-only messages, not counted as data messages).
//
// UDP: plain sockets, sendmmsg(2) in batches of up to 64, paced every millisecond; messages
// are built once and only the header's export time and sequence number are patched before
// each send. tcp/tls: transport::make_sender (what the probe uses), paced the same way but
// never more than 4 MiB ahead of the socket (--rate 0 = as fast as the collector takes it).
//
// Prints one line of key=value pairs: messages, records, template messages, seconds,
// achieved message and record rates, send errors (and for streams messages dropped).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/bytes.hpp"
#include "ipfix/message_builder.hpp"
#include "ipfix/netflow_v9_builder.hpp"
#include "transport/endpoint.hpp"
#include "transport/sender.hpp"

namespace {

using namespace flowsec;
using Clock = std::chrono::steady_clock;

struct Config {
  std::string to = "127.0.0.1:2055";
  bool v9 = false;
  transport::Scheme scheme = transport::Scheme::udp;
  double rate = 10000;  // messages (datagrams) per second; 0 = as fast as possible
  double duration = 5;
  std::uint32_t records_per_message = 25;
  std::uint32_t exporters = 1;
  std::string ca;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "flowgen: %s\nusage: flowgen --to HOST:PORT [--proto ipfix|v9] "
               "[--transport udp|tcp|tls] [--rate DATAGRAMS_PER_S (0 = max)] [--duration S] "
               "[--records-per-message N] [--exporters K] [--ca FILE]\n",
               why);
  std::exit(2);
}

Config parse(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value");
      return argv[++i];
    };
    if (a == "--to") {
      c.to = value();
    } else if (a == "--proto") {
      const auto v = value();
      if (v != "ipfix" && v != "v9") usage("--proto is ipfix or v9");
      c.v9 = v == "v9";
    } else if (a == "--transport") {
      const auto v = value();
      if (v == "udp") {
        c.scheme = transport::Scheme::udp;
      } else if (v == "tcp") {
        c.scheme = transport::Scheme::tcp;
      } else if (v == "tls") {
        c.scheme = transport::Scheme::tls;
      } else {
        usage("--transport is udp, tcp or tls");
      }
    } else if (a == "--rate") {
      c.rate = std::strtod(value().c_str(), nullptr);
    } else if (a == "--duration") {
      c.duration = std::strtod(value().c_str(), nullptr);
    } else if (a == "--records-per-message") {
      c.records_per_message =
          static_cast<std::uint32_t>(std::strtoul(value().c_str(), nullptr, 10));
    } else if (a == "--exporters") {
      c.exporters = static_cast<std::uint32_t>(std::strtoul(value().c_str(), nullptr, 10));
    } else if (a == "--ca") {
      c.ca = value();
    } else {
      usage(("unknown argument " + std::string(a)).c_str());
    }
  }
  if (c.records_per_message == 0 || c.records_per_message > 1000) {
    usage("--records-per-message is 1..1000");
  }
  if (c.exporters == 0 || c.exporters > 1000) usage("--exporters is 1..1000");
  if (c.duration <= 0) usage("--duration must be positive");
  if (c.rate < 0) usage("--rate must not be negative");
  if (c.v9 && transport::is_stream(c.scheme)) usage("NetFlow v9 goes over udp only");
  return c;
}

ipfix::TemplatePtr ten_field_template() {
  return *ipfix::Template::make(256, {{0, 8, 4},
                                      {0, 12, 4},
                                      {0, 7, 2},
                                      {0, 11, 2},
                                      {0, 4, 1},
                                      {0, 6, 2},
                                      {0, 1, 8},
                                      {0, 2, 8},
                                      {0, 152, 8},
                                      {0, 153, 8}});
}

std::vector<std::byte> record_bytes(std::uint32_t i, std::uint64_t now_ms) {
  std::vector<std::byte> r;
  ByteWriter w(r);
  w.u32(0x0a000000 | (i & 0xffffff));
  w.u32(0xc0a80000 | (i % 65000));
  w.u16(static_cast<std::uint16_t>(1024 + i % 60000));
  w.u16(443);
  w.u8(6);
  w.u16(0x1b);
  w.u64(1500ull * (i % 1000 + 1));
  w.u64(i % 1000 + 1);
  w.u64(now_ms - 2000 + i % 1000);
  w.u64(now_ms - 1000 + i % 1000);
  return r;
}

std::uint64_t unix_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

void put32(std::vector<std::byte>& m, std::size_t at, std::uint32_t v) {
  m[at] = std::byte(v >> 24);
  m[at + 1] = std::byte((v >> 16) & 0xff);
  m[at + 2] = std::byte((v >> 8) & 0xff);
  m[at + 3] = std::byte(v & 0xff);
}

// Prepared messages: `data` hold records_per_message records each; `tmpl` carries the
// template only. The header's time and sequence fields are patched before every send.
struct Prepared {
  std::vector<std::vector<std::byte>> data;
  std::vector<std::byte> tmpl;
  bool v9 = false;
  std::uint32_t records = 0;  // per data message

  // IPFIX: exportTime at 4, sequence (data records before this message) at 8.
  // v9: sysUptime at 4, unix_secs at 8, sequence (packets before this one) at 12.
  // Every exporter has its own observation domain / source id (at 12 / 16), as collectors
  // such as nfcapd track sequence numbers per (address, domain), not per source port.
  void patch(std::vector<std::byte>& m, std::uint32_t unix_secs, std::uint32_t uptime_ms,
             std::uint64_t records_before, std::uint64_t packets_before,
             std::uint32_t domain) const {
    if (v9) {
      put32(m, 4, uptime_ms);
      put32(m, 8, unix_secs);
      put32(m, 12, static_cast<std::uint32_t>(packets_before));
      put32(m, 16, domain);
    } else {
      put32(m, 4, unix_secs);
      put32(m, 8, static_cast<std::uint32_t>(records_before));
      put32(m, 12, domain);
    }
  }
};

Prepared prepare(const Config& c, std::size_t count) {
  const auto t = ten_field_template();
  const std::uint64_t now = unix_ms();
  Prepared p;
  p.v9 = c.v9;
  p.records = c.records_per_message;
  const auto secs = static_cast<std::uint32_t>(now / 1000);
  std::uint32_t i = 0;
  if (c.v9) {
    ipfix::NetflowV9MessageBuilder b(1, 65535);
    b.begin(1000, secs, 0);
    (void)b.add_template(*t);
    p.tmpl = b.finish();
    for (std::size_t m = 0; m < count; ++m) {
      b.begin(1000, secs, 0);
      for (std::uint32_t r = 0; r < c.records_per_message; ++r) {
        (void)b.add_record(*t, record_bytes(i++, now));
      }
      p.data.push_back(b.finish());
    }
  } else {
    ipfix::IpfixMessageBuilder b(1, 65535);
    b.begin(secs, 0);
    (void)b.add_template(*t);
    p.tmpl = b.finish();
    for (std::size_t m = 0; m < count; ++m) {
      b.begin(secs, 0);
      for (std::uint32_t r = 0; r < c.records_per_message; ++r) {
        (void)b.add_record(*t, record_bytes(i++, now));
      }
      p.data.push_back(b.finish());
    }
  }
  return p;
}

struct Totals {
  std::uint64_t messages = 0;
  std::uint64_t records = 0;
  std::uint64_t templates = 0;
  std::uint64_t errors = 0;
  std::uint64_t dropped = 0;
  double seconds = 0;
};

// Messages due by `elapsed` at `rate`, or "as many as the caller can take" for rate 0.
std::uint64_t due(const Config& c, Clock::duration elapsed) {
  const double s = std::chrono::duration<double>(elapsed).count();
  if (c.rate <= 0) return ~std::uint64_t{0};
  return static_cast<std::uint64_t>(std::min(s, c.duration) * c.rate);
}

struct Exporter {
  int fd = -1;
  std::uint32_t domain = 1;
  std::uint64_t records = 0;
  std::uint64_t packets = 0;
};

Totals run_udp(const Config& c) {
  const auto ep = transport::parse_export_endpoint(c.to);
  if (!ep) usage(ep.error().c_str());
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(ep->port);
  if (::inet_pton(AF_INET, ep->host == "localhost" ? "127.0.0.1" : ep->host.c_str(),
                  &to.sin_addr) != 1) {
    usage("--to needs an IPv4 address for udp");
  }
  constexpr std::size_t kBatch = 64;
  constexpr std::size_t kRing = 1024;  // distinct prepared messages
  Prepared p = prepare(c, kRing);
  std::vector<Exporter> ex(c.exporters);
  for (std::size_t i = 0; i < ex.size(); ++i) ex[i].domain = static_cast<std::uint32_t>(i + 1);
  for (auto& e : ex) {
    e.fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    int sz = 4 << 20;
    (void)::setsockopt(e.fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    if (e.fd < 0 || ::connect(e.fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
      std::perror("flowgen: udp socket");
      std::exit(1);
    }
  }
  Totals t;
  const auto start = Clock::now();
  const auto boot_ms = unix_ms();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(c.duration));
  auto next_template = start;
  std::vector<mmsghdr> msgs(kBatch);
  std::vector<iovec> iov(kBatch);
  std::size_t ring = 0;
  std::size_t turn = 0;
  auto send_one = [&](Exporter& e, std::vector<std::byte>& m) {
    if (::send(e.fd, m.data(), m.size(), 0) < 0) ++t.errors;
  };
  while (true) {
    const auto now = Clock::now();
    if (now >= end) break;
    const auto secs = static_cast<std::uint32_t>(unix_ms() / 1000);
    const auto uptime = static_cast<std::uint32_t>(unix_ms() - boot_ms + 1000);
    if (now >= next_template) {  // template first, then once a second (RFC 7011 §8.4)
      for (auto& e : ex) {
        p.patch(p.tmpl, secs, uptime, e.records, e.packets, e.domain);
        send_one(e, p.tmpl);
        ++e.packets;
        ++t.templates;
      }
      next_template = now + std::chrono::seconds(1);
    }
    const std::uint64_t target = due(c, now - start);
    // One exporter per batch, round robin; at most ~10 ms of catching up per pass.
    std::uint64_t budget =
        c.rate > 0 ? std::max<std::uint64_t>(kBatch, static_cast<std::uint64_t>(c.rate / 100))
                   : 4096;
    while (t.messages < target && budget > 0) {
      Exporter& e = ex[turn++ % ex.size()];
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>({kBatch, target - t.messages, budget}));
      for (std::size_t k = 0; k < n; ++k) {
        auto& m = p.data[ring];
        ring = (ring + 1) % kRing;
        p.patch(m, secs, uptime, e.records + k * p.records, e.packets + k, e.domain);
        iov[k] = {m.data(), m.size()};
        msgs[k] = {};
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
      }
      std::size_t done = 0;
      while (done < n) {
        const int r = ::sendmmsg(e.fd, msgs.data() + done, static_cast<unsigned>(n - done), 0);
        if (r < 0) {
          if (errno == EINTR) continue;
          ++t.errors;  // ECONNREFUSED after an ICMP error: count the batch as not sent
          break;
        }
        done += static_cast<std::size_t>(r);
      }
      e.records += done * p.records;
      e.packets += done;
      t.messages += done;
      t.records += done * p.records;
      budget -= std::min<std::uint64_t>(budget, n);
      if (done < n) break;
    }
    if (c.rate > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }
  t.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& e : ex) ::close(e.fd);
  return t;
}

Totals run_stream(const Config& c) {
  auto ep = transport::parse_export_endpoint(std::string(to_string(c.scheme)) + "://" + c.to);
  if (!ep) usage(ep.error().c_str());
  asio::io_context io;
  transport::SenderOptions so;
  so.tls.ca_file = c.ca;
  so.queue_limit_bytes = 256u << 20;
  constexpr std::size_t kRing = 1024;
  Prepared p = prepare(c, kRing);
  struct StreamExporter {
    std::unique_ptr<transport::Sender> sender;
    std::uint64_t records = 0;
    std::uint32_t domain = 1;
  };
  std::vector<StreamExporter> ex(c.exporters);
  for (std::size_t i = 0; i < ex.size(); ++i) ex[i].domain = static_cast<std::uint32_t>(i + 1);
  for (auto& e : ex) {
    auto s = transport::make_sender(io, *ep, so);
    if (!s) {
      std::fprintf(stderr, "flowgen: %s\n", s.error().c_str());
      std::exit(1);
    }
    e.sender = std::move(*s);
    // The template goes first on every (re)connection (RFC 7011 §8).
    e.sender->set_on_connect([&p, &e] {
      auto t = p.tmpl;
      p.patch(t, static_cast<std::uint32_t>(unix_ms() / 1000), 0, e.records, 0, e.domain);
      return std::vector<transport::Message>{std::move(t)};
    });
  }
  Totals t;
  Clock::time_point start;
  bool started = false;
  std::size_t ring = 0;
  std::size_t turn = 0;
  const auto boot_ms = unix_ms();
  constexpr std::size_t kAhead = 4u << 20;  // bytes queued per sender before we wait
  asio::steady_timer timer(io);
  std::function<void()> tick = [&] {
    const auto now = Clock::now();
    bool all_up = true;
    for (auto& e : ex) all_up = all_up && e.sender->stats().connected;
    if (!started) {
      if (!all_up) {  // the clock starts once every connection (and handshake) is up
        timer.expires_after(std::chrono::milliseconds(1));
        timer.async_wait([&](const std::error_code&) { tick(); });
        return;
      }
      started = true;
      start = now;
    }
    const double elapsed = std::chrono::duration<double>(now - start).count();
    if (elapsed >= c.duration) {
      auto pending = std::make_shared<std::size_t>(ex.size());
      for (auto& e : ex) {
        e.sender->shutdown(std::chrono::seconds(60), [pending, &t](bool ok) {
          if (!ok) ++t.errors;
          --*pending;
        });
      }
      return;
    }
    const std::uint64_t target = due(c, now - start);
    const auto secs = static_cast<std::uint32_t>(unix_ms() / 1000);
    const auto uptime = static_cast<std::uint32_t>(unix_ms() - boot_ms + 1000);
    std::size_t blocked = 0;
    while (t.messages < target && blocked < ex.size()) {
      StreamExporter& e = ex[turn++ % ex.size()];
      if (e.sender->stats().queue_bytes > kAhead) {
        ++blocked;
        continue;
      }
      blocked = 0;
      for (int k = 0; k < 64 && t.messages < target; ++k) {
        auto m = p.data[ring];
        ring = (ring + 1) % kRing;
        p.patch(m, secs, uptime, e.records, 0, e.domain);
        e.sender->send(std::move(m));
        e.records += p.records;
        ++t.messages;
        t.records += p.records;
      }
    }
    timer.expires_after(std::chrono::microseconds(500));
    timer.async_wait([&](const std::error_code&) { tick(); });
  };
  asio::post(io, tick);
  io.run();
  // Time to the last byte handed over, shutdown flush included.
  t.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& e : ex) {
    const auto st = e.sender->stats();
    t.dropped += st.messages_dropped;
  }
  t.templates = ex.size();
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const Config c = parse(argc, argv);
  const Totals t = c.scheme == transport::Scheme::udp ? run_udp(c) : run_stream(c);
  const double s = std::max(t.seconds, 1e-9);
  std::printf(
      "flowgen proto=%s transport=%s exporters=%u records_per_message=%u messages=%llu "
      "records=%llu template_messages=%llu seconds=%.3f msg_rate=%.0f rec_rate=%.0f "
      "errors=%llu dropped=%llu\n",
      c.v9 ? "v9" : "ipfix", std::string(to_string(c.scheme)).c_str(), c.exporters,
      c.records_per_message, static_cast<unsigned long long>(t.messages),
      static_cast<unsigned long long>(t.records), static_cast<unsigned long long>(t.templates),
      t.seconds, static_cast<double>(t.messages) / s, static_cast<double>(t.records) / s,
      static_cast<unsigned long long>(t.errors), static_cast<unsigned long long>(t.dropped));
  return t.errors == 0 ? 0 : 1;
}
