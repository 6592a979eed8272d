// Live capture through libpcap: the fallback when the AF_PACKET ring cannot be set up
// (or when asked for), and the way to capture on interfaces the ring reader does not
// handle ("any", PPP, tunnels with odd hardware types). libpcap reuses its buffer per
// packet, so packets are copied into an arena, as for files.
#include <pcap/pcap.h>

#include <cstring>
#include <vector>

#include "capture/sources.hpp"
#include "common/log.hpp"

namespace flowsec::capture::detail {
namespace {

class PcapLiveSource final : public CaptureSource {
 public:
  PcapLiveSource(std::string description, pcap_t* pcap, std::uint32_t snaplen)
      : CaptureSource(SourceKind::libpcap_live, std::move(description)),
        pcap_(pcap),
        snaplen_(snaplen),
        arena_(std::size_t{snaplen} * PacketBatch::kCapacity),
        link_type_(pcap_datalink(pcap)),
        nanoseconds_(pcap_get_tstamp_precision(pcap) == PCAP_TSTAMP_PRECISION_NANO) {}
  ~PcapLiveSource() override { pcap_close(pcap_); }

  ReadStatus next_batch(PacketBatch& batch) override {
    batch.size = 0;
    if (done_ != ReadStatus::packets) return done_;
    if (stop_requested()) return done_ = ReadStatus::end;
    batch_ = &batch;
    out_ = arena_.data();
    // Waits at most the packet buffer timeout (block_timeout_ms) when nothing comes.
    const int n = pcap_dispatch(pcap_, static_cast<int>(PacketBatch::kCapacity), &on_packet,
                                reinterpret_cast<u_char*>(this));
    batch_ = nullptr;
    received_ += batch.size;
    if (n == PCAP_ERROR_BREAK || (n >= 0 && stop_requested() && batch.size == 0)) {
      return done_ = ReadStatus::end;
    }
    if (n < 0) {
      error_ = description_ + ": " + pcap_geterr(pcap_);
      if (batch.size > 0) {
        done_ = ReadStatus::error;
        return ReadStatus::packets;
      }
      return done_ = ReadStatus::error;
    }
    return batch.size > 0 ? ReadStatus::packets : ReadStatus::idle;
  }

  CaptureStats stats() override {
    CaptureStats s;
    s.received = received_;
    pcap_stat ps{};
    if (pcap_stats(pcap_, &ps) == 0) {
      s.kernel_drops = ps.ps_drop;
      s.interface_drops = ps.ps_ifdrop;
    }
    return s;
  }

 private:
  static void on_packet(u_char* user, const pcap_pkthdr* hdr, const u_char* data) {
    auto* self = reinterpret_cast<PcapLiveSource*>(user);
    PacketBatch& batch = *self->batch_;
    if (batch.size >= PacketBatch::kCapacity) return;  // pcap_dispatch's count prevents it
    const std::uint32_t len = std::min(hdr->caplen, self->snaplen_);
    std::memcpy(self->out_, data, len);
    RawPacket& p = batch.packets[batch.size++];
    const std::int64_t frac = hdr->ts.tv_usec;
    p.timestamp_ns =
        std::int64_t{hdr->ts.tv_sec} * 1'000'000'000 + (self->nanoseconds_ ? frac : frac * 1000);
    p.wire_length = hdr->len;
    p.link_type = self->link_type_;
    p.data = {self->out_, len};
    self->out_ += len;
  }

  // pcap_breakloop() is documented as safe from another thread or a signal handler;
  // on Linux it also wakes a reader blocked in poll().
  void wake() noexcept override { pcap_breakloop(pcap_); }

  pcap_t* pcap_;
  std::uint32_t snaplen_;
  std::vector<std::byte> arena_;
  int link_type_;
  bool nanoseconds_;
  PacketBatch* batch_ = nullptr;
  std::byte* out_ = nullptr;
  std::uint64_t received_ = 0;
  ReadStatus done_ = ReadStatus::packets;  // packets = still reading
};

}  // namespace

Expected<std::unique_ptr<CaptureSource>, std::string> open_pcap_live(
    const CaptureOptions& options) {
  const std::string& name = options.interface;
  const std::string where = quoted("interface", name);
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_create(name.c_str(), err);
  if (p == nullptr) return unexpected(where + ": " + err);
  auto fail = [&](std::string why) {
    pcap_close(p);
    return unexpected(where + ": " + why);
  };
  pcap_set_snaplen(p, static_cast<int>(options.snaplen));
  pcap_set_promisc(p, options.promiscuous ? 1 : 0);
  pcap_set_timeout(p, static_cast<int>(options.block_timeout_ms));
  pcap_set_buffer_size(p, static_cast<int>(std::min<std::size_t>(options.ring_bytes, 1u << 30)));
  pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);  // micro if unsupported
  const int rc = pcap_activate(p);
  if (rc < 0) {
    switch (rc) {
      case PCAP_ERROR_NO_SUCH_DEVICE:
        return fail("No such device");
      case PCAP_ERROR_PERM_DENIED:
        return fail(std::string("Permission denied (needs CAP_NET_RAW): ") + pcap_geterr(p));
      case PCAP_ERROR:
        return fail(pcap_geterr(p));
      default:
        return fail(std::string(pcap_statustostr(rc)) + ": " + pcap_geterr(p));
    }
  }
  if (rc > 0) {
    log::warning("capture", where + ": " + pcap_statustostr(rc) + ": " + pcap_geterr(p));
  }
  if (!options.bpf_filter.empty()) {
    bpf_program prog{};
    if (pcap_compile(p, &prog, options.bpf_filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
      return fail(quoted("filter", options.bpf_filter) + ": " + pcap_geterr(p));
    }
    const int set = pcap_setfilter(p, &prog);
    pcap_freecode(&prog);
    if (set != 0) return fail(quoted("filter", options.bpf_filter) + ": " + pcap_geterr(p));
  }
  std::string description =
      where + " (libpcap " + pcap_datalink_val_to_name(pcap_datalink(p)) + ")";
  return std::unique_ptr<CaptureSource>(
      std::make_unique<PcapLiveSource>(std::move(description), p, options.snaplen));
}

}  // namespace flowsec::capture::detail
