#include "capture/pcap_file.hpp"

#include <pcap/pcap.h>

namespace flowsec::capture {

struct PcapFile::Handle {
  pcap_t* pcap = nullptr;
  bool nanoseconds = false;
  ~Handle() {
    if (pcap != nullptr) pcap_close(pcap);
  }
};

PcapFile::PcapFile(std::unique_ptr<Handle> h) : handle_(std::move(h)) {}
PcapFile::PcapFile(PcapFile&&) noexcept = default;
PcapFile& PcapFile::operator=(PcapFile&&) noexcept = default;
PcapFile::~PcapFile() = default;

Expected<PcapFile, std::string> PcapFile::open(const std::string& path) {
  char err[PCAP_ERRBUF_SIZE] = {};
  auto h = std::make_unique<Handle>();
  h->pcap = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  if (h->pcap == nullptr) return unexpected(std::string(path) + ": " + err);
  h->nanoseconds = pcap_get_tstamp_precision(h->pcap) == PCAP_TSTAMP_PRECISION_NANO;
  return PcapFile(std::move(h));
}

int PcapFile::link_type() const {
  return pcap_datalink(handle_->pcap);
}

std::optional<RawPacket> PcapFile::next() {
  pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  int rc = pcap_next_ex(handle_->pcap, &hdr, &data);
  if (rc == PCAP_ERROR_BREAK) return std::nullopt;
  if (rc != 1) {
    if (rc == PCAP_ERROR) error_ = pcap_geterr(handle_->pcap);
    return std::nullopt;
  }
  RawPacket p;
  const std::int64_t frac = hdr->ts.tv_usec;
  p.timestamp_ns =
      std::int64_t{hdr->ts.tv_sec} * 1'000'000'000 + (handle_->nanoseconds ? frac : frac * 1000);
  p.wire_length = hdr->len;
  p.link_type = pcap_datalink(handle_->pcap);
  p.data = {reinterpret_cast<const std::byte*>(data), hdr->caplen};
  return p;
}

}  // namespace flowsec::capture
