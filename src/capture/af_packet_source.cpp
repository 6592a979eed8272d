// Live capture with a Linux AF_PACKET TPACKET_V3 ring (packet(7), kernel
// Documentation/networking/packet_mmap.rst). The kernel fills fixed-size blocks of
// packets and hands a block over when it is full or block_timeout_ms after its first
// packet; the reader walks the block in place (no copy) and returns it afterwards.
// A batch never spans two blocks, so "valid until the next call" is one block held.
//
// The BPF filter is compiled by libpcap against a dead handle of the interface's link
// type and attached with SO_ATTACH_FILTER; its return value is the snap length, so
// the kernel copies only snaplen bytes into the ring. The socket is bound to the
// interface only after the filter and ring are in place: nothing unfiltered slips in.
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "capture/sources.hpp"
#include "common/log.hpp"

namespace flowsec::capture::detail {
namespace {

constexpr std::size_t kBlockSize = std::size_t{1} << 20;  // holds a 256 kB snaplen frame
constexpr std::size_t kMinBlocks = 4;
constexpr std::uint32_t kFrameSize = 2048;  // only a ring geometry check for TPACKET_V3
constexpr unsigned kVlanTagLen = 4;
constexpr int kDltRaw = DLT_RAW;
constexpr unsigned short kArphrdRawIp = 519;  // ARPHRD_RAWIP (not in glibc's if_arp.h)

std::string errno_text(int err) {
  return std::strerror(err);
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_ = -1;
};

class AfPacketSource final : public CaptureSource {
 public:
  AfPacketSource(std::string description, Fd socket, Fd wake, std::byte* ring,
                 std::size_t block_count, int link_type, bool loopback, std::uint32_t snaplen,
                 int poll_ms)
      : CaptureSource(SourceKind::af_packet, std::move(description)),
        socket_(std::move(socket)),
        wake_(std::move(wake)),
        ring_(ring),
        block_count_(block_count),
        link_type_(link_type),
        loopback_(loopback),
        snaplen_(snaplen),
        poll_ms_(poll_ms) {}

  ~AfPacketSource() override { ::munmap(ring_, kBlockSize * block_count_); }

  ReadStatus next_batch(PacketBatch& batch) override {
    batch.size = 0;
    if (done_ != ReadStatus::packets) return done_;
    for (;;) {
      if (stop_requested()) {
        release_block();
        done_ = ReadStatus::end;
        return done_;
      }
      if (block_ != nullptr && left_in_block_ == 0) release_block();
      if (block_ == nullptr) {
        auto* desc = block_desc(index_);
        if ((__atomic_load_n(&desc->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) ==
            0) {
          const ReadStatus w = wait();
          if (w != ReadStatus::packets) return w;
          continue;
        }
        block_ = desc;
        left_in_block_ = desc->hdr.bh1.num_pkts;
        next_ = reinterpret_cast<std::byte*>(desc) + desc->hdr.bh1.offset_to_first_pkt;
        if (left_in_block_ == 0) continue;
      }
      fill(batch);
      if (batch.size > 0) {
        received_ += batch.size;
        return ReadStatus::packets;
      }
      // The block held only skipped packets (loopback's outgoing copies): go on.
    }
  }

  CaptureStats stats() override {
    tpacket_stats_v3 st{};
    socklen_t len = sizeof st;
    if (::getsockopt(socket_.get(), SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
      kernel_drops_ += st.tp_drops;  // the kernel resets its counters on every read
    }
    CaptureStats s;
    s.received = received_;
    s.kernel_drops = kernel_drops_;
    return s;
  }

 private:
  tpacket_block_desc* block_desc(std::size_t i) const {
    return reinterpret_cast<tpacket_block_desc*>(ring_ + i * kBlockSize);
  }

  void release_block() {
    if (block_ == nullptr) return;
    __atomic_store_n(&block_->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    block_ = nullptr;
    left_in_block_ = 0;
    index_ = (index_ + 1) % block_count_;
  }

  ReadStatus wait() {
    std::array<pollfd, 2> fds{};
    fds[0] = {socket_.get(), POLLIN | POLLERR, 0};
    fds[1] = {wake_.get(), POLLIN, 0};
    const int n = ::poll(fds.data(), fds.size(), poll_ms_);
    if (n < 0) {
      if (errno == EINTR) return stop_requested() ? ReadStatus::packets : ReadStatus::idle;
      return fail("poll: " + errno_text(errno));
    }
    if (n == 0) return ReadStatus::idle;
    if ((fds[0].revents & (POLLERR | POLLNVAL | POLLHUP)) != 0) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(socket_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == ENETDOWN) return fail("the interface went down");
      if (err != 0) return fail(errno_text(err));
      if ((fds[0].revents & POLLNVAL) != 0) return fail("socket closed");
    }
    return ReadStatus::packets;  // look at the ring again (also after stop())
  }

  ReadStatus fail(const std::string& why) {
    error_ = description_ + ": " + why;
    release_block();
    done_ = ReadStatus::error;
    return done_;
  }

  void fill(PacketBatch& batch) {
    while (left_in_block_ > 0 && batch.size < PacketBatch::kCapacity) {
      auto* h = reinterpret_cast<tpacket3_hdr*>(next_);
      --left_in_block_;
      next_ = h->tp_next_offset != 0 ? next_ + h->tp_next_offset : nullptr;
      if (next_ == nullptr) left_in_block_ = 0;
      if (loopback_) {
        // lo shows every packet twice, as sent and as received; keep one (as libpcap does).
        const auto* sll = reinterpret_cast<const sockaddr_ll*>(reinterpret_cast<std::byte*>(h) +
                                                               TPACKET_ALIGN(sizeof(tpacket3_hdr)));
        if (sll->sll_pkttype == PACKET_OUTGOING) continue;
      }
      std::byte* data = reinterpret_cast<std::byte*>(h) + h->tp_mac;
      std::uint32_t caplen = h->tp_snaplen;
      std::uint32_t wire = h->tp_len;
      if ((h->tp_status & TP_STATUS_VLAN_VALID) != 0 && link_type_ == DLT_EN10MB &&
          caplen >= 2 * ETH_ALEN) {
        // The kernel moved the 802.1Q tag into metadata; put it back in front of the
        // EtherType, in the PACKET_RESERVE room before the frame, so the parser sees it.
        const auto tpid = static_cast<std::uint16_t>(
            (h->tp_status & TP_STATUS_VLAN_TPID_VALID) != 0 ? h->hv1.tp_vlan_tpid : ETH_P_8021Q);
        const auto tci = static_cast<std::uint16_t>(h->hv1.tp_vlan_tci);
        data -= kVlanTagLen;
        std::memmove(data, data + kVlanTagLen, 2 * ETH_ALEN);
        const std::uint16_t tag[2] = {htons(tpid), htons(tci)};
        std::memcpy(data + 2 * ETH_ALEN, tag, sizeof tag);
        caplen = std::min(caplen + kVlanTagLen, snaplen_);
        wire += kVlanTagLen;
      }
      RawPacket& p = batch.packets[batch.size++];
      p.timestamp_ns =
          std::int64_t{h->tp_sec} * 1'000'000'000 + static_cast<std::int64_t>(h->tp_nsec);
      p.wire_length = wire;
      p.link_type = link_type_;
      p.data = {data, caplen};
    }
  }

  void wake() noexcept override {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wake_.get(), &one, sizeof one);
  }

  Fd socket_;
  Fd wake_;
  std::byte* ring_;
  std::size_t block_count_;
  int link_type_;
  bool loopback_;
  std::uint32_t snaplen_;
  int poll_ms_;
  std::size_t index_ = 0;                // next block to look at
  tpacket_block_desc* block_ = nullptr;  // block being walked, owned by us until released
  std::uint32_t left_in_block_ = 0;
  std::byte* next_ = nullptr;
  std::uint64_t received_ = 0;
  std::uint64_t kernel_drops_ = 0;
  ReadStatus done_ = ReadStatus::packets;  // packets = still reading
};

}  // namespace

Expected<std::unique_ptr<CaptureSource>, LiveOpenError> open_af_packet(
    const CaptureOptions& options) {
  const std::string& name = options.interface;
  const std::string where = quoted("interface", name);
  auto fatal = [&](const std::string& why) {
    return unexpected(LiveOpenError{where + ": " + why, true});
  };
  auto soft = [&](const std::string& why) {
    return unexpected(LiveOpenError{where + ": " + why, false});
  };
  if (name.empty() || name.size() >= IFNAMSIZ) return fatal("invalid interface name");

  // Protocol 0: the socket receives nothing until bind() names ETH_P_ALL.
  Fd sock(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) {
    const int err = errno;
    if (err == EPERM || err == EACCES) return fatal(errno_text(err) + " (needs CAP_NET_RAW)");
    return soft("socket(AF_PACKET): " + errno_text(err));
  }
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.c_str(), name.size());
  if (::ioctl(sock.get(), SIOCGIFINDEX, &ifr) != 0) return fatal(errno_text(errno));
  const int ifindex = ifr.ifr_ifindex;
  if (::ioctl(sock.get(), SIOCGIFHWADDR, &ifr) != 0) return fatal(errno_text(errno));
  const auto hw = static_cast<unsigned short>(ifr.ifr_hwaddr.sa_family);
  int link_type = 0;
  bool loopback = false;
  switch (hw) {
    case ARPHRD_ETHER:
      link_type = DLT_EN10MB;
      break;
    case ARPHRD_LOOPBACK:  // Linux lo carries Ethernet headers with zero addresses
      link_type = DLT_EN10MB;
      loopback = true;
      break;
    case ARPHRD_NONE:  // tun devices, WireGuard: frames start with the IP header
    case kArphrdRawIp:
      link_type = kDltRaw;
      break;
    default:
      return soft("hardware type ARPHRD " + std::to_string(hw) +
                  " is not read by the AF_PACKET ring");
  }

  int version = TPACKET_V3;
  if (::setsockopt(sock.get(), SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0) {
    return soft("TPACKET_V3: " + errno_text(errno));
  }
  if (link_type == DLT_EN10MB) {
    unsigned reserve = kVlanTagLen;  // room to put a stripped VLAN tag back
    if (::setsockopt(sock.get(), SOL_PACKET, PACKET_RESERVE, &reserve, sizeof reserve) != 0) {
      return soft("PACKET_RESERVE: " + errno_text(errno));
    }
  }

  // Filter (or the empty program, which only returns the snap length).
  {
    pcap_t* dead = pcap_open_dead_with_tstamp_precision(
        link_type, static_cast<int>(options.snaplen), PCAP_TSTAMP_PRECISION_NANO);
    if (dead == nullptr) return soft("pcap_open_dead failed");
    bpf_program prog{};
    if (pcap_compile(dead, &prog, options.bpf_filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
      std::string why = quoted("filter", options.bpf_filter) + ": " + pcap_geterr(dead);
      pcap_close(dead);
      return fatal(why);
    }
    static_assert(sizeof(sock_filter) == sizeof(bpf_insn));
    sock_fprog fprog{};
    fprog.len = static_cast<unsigned short>(prog.bf_len);
    fprog.filter = reinterpret_cast<sock_filter*>(prog.bf_insns);
    const int rc = ::setsockopt(sock.get(), SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog);
    const int err = errno;
    pcap_freecode(&prog);
    pcap_close(dead);
    if (rc != 0) return soft("SO_ATTACH_FILTER: " + errno_text(err));
  }

  const std::size_t blocks = std::max(kMinBlocks, options.ring_bytes / kBlockSize);
  tpacket_req3 req{};
  req.tp_block_size = static_cast<unsigned>(kBlockSize);
  req.tp_block_nr = static_cast<unsigned>(blocks);
  req.tp_frame_size = kFrameSize;
  req.tp_frame_nr = static_cast<unsigned>(kBlockSize / kFrameSize * blocks);
  req.tp_retire_blk_tov = options.block_timeout_ms;
  req.tp_sizeof_priv = 0;
  req.tp_feature_req_word = 0;
  if (::setsockopt(sock.get(), SOL_PACKET, PACKET_RX_RING, &req, sizeof req) != 0) {
    return soft("PACKET_RX_RING: " + errno_text(errno));
  }
  void* ring =
      ::mmap(nullptr, kBlockSize * blocks, PROT_READ | PROT_WRITE, MAP_SHARED, sock.get(), 0);
  if (ring == MAP_FAILED) return soft("mmap of the ring: " + errno_text(errno));
  auto unmap = [&] { ::munmap(ring, kBlockSize * blocks); };

  Fd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (wake.get() < 0) {
    unmap();
    return soft("eventfd: " + errno_text(errno));
  }

  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
    const int err = errno;
    unmap();
    return fatal("bind: " + errno_text(err));
  }
  if (options.promiscuous) {
    packet_mreq mr{};
    mr.mr_ifindex = ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    if (::setsockopt(sock.get(), SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) != 0) {
      log::warning("capture", where + ": promiscuous mode: " + errno_text(errno));
    }
  }

  std::string description = where + " (AF_PACKET TPACKET_V3, " + std::to_string(blocks) +
                            " blocks of " + std::to_string(kBlockSize >> 10) + " KiB)";
  const int poll_ms = static_cast<int>(std::max<std::uint32_t>(options.block_timeout_ms, 1));
  return std::unique_ptr<CaptureSource>(std::make_unique<AfPacketSource>(
      std::move(description), std::move(sock), std::move(wake), static_cast<std::byte*>(ring),
      blocks, link_type, loopback, options.snaplen, poll_ms));
}

}  // namespace flowsec::capture::detail
