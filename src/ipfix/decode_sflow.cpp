// sFlow version 5 decoder (decode.hpp; format: sflow.org "sFlow Version 5",
// sflow_version_5.txt, cited below by the names of its XDR structures).
//
// Every flow sample (compact 0:1 or expanded 0:3) becomes exactly one record of a
// fixed internal template — id 1 for IPv4 (and for samples without an IP header),
// id 2 for IPv6; ids below 256 never reach the wire (docs/adr/0002). The values are
// those of the one sampled packet: octetDeltaCount is its frame length (for Ethernet
// samples it includes the FCS, as sampled_header.frame_length is defined), packetDeltaCount
// is 1, and samplingInterval carries the sampling rate. Counts are NOT scaled by the
// sampling rate: that is the consumer's choice, and keeps the records faithful.
//
// A sample whose header is not IP (ARP, ...), cannot be parsed (header protocol other
// than Ethernet/IPv4/IPv6, or a malformed header) still yields its record — bytes,
// interfaces and MACs are real traffic — with zero addresses and ipVersion 0 (or the
// fields the parser got to before it stopped, e.g. addresses when the TCP header is cut).
// Generic interface counters (counter record 0:1) go to the caller's vector.
#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

#include "common/bytes.hpp"
#include "ipfix/decode.hpp"
#include "ipfix/limits.hpp"
#include "packet/parser.hpp"

namespace flowsec::ipfix {
namespace {

constexpr std::uint32_t kSflowVersion = 5;
// Sample and record formats of enterprise 0 (the "opaque = format" comments of the spec).
constexpr std::uint32_t kFlowSample = 1;
constexpr std::uint32_t kCounterSample = 2;
constexpr std::uint32_t kExpandedFlowSample = 3;
constexpr std::uint32_t kExpandedCounterSample = 4;
constexpr std::uint32_t kRawPacketHeader = 1;
constexpr std::uint32_t kEthernetFrameData = 2;
constexpr std::uint32_t kIpv4Data = 3;
constexpr std::uint32_t kIpv6Data = 4;
constexpr std::uint32_t kExtendedSwitch = 1001;
constexpr std::uint32_t kGenericInterfaceCounters = 1;
// enum header_protocol.
constexpr std::uint32_t kHeaderEthernet = 1;
constexpr std::uint32_t kHeaderIpv4 = 11;
constexpr std::uint32_t kHeaderIpv6 = 12;
// Fixed sizes of the records we read.
constexpr std::size_t kRawHeaderFixed = 16;
constexpr std::size_t kEthernetDataSize = 24;  // length, 2 x mac (6 bytes + XDR pad), type
constexpr std::size_t kIpv4DataSize = 32;
constexpr std::size_t kIpv6DataSize = 56;
constexpr std::size_t kExtendedSwitchSize = 16;
constexpr std::size_t kGenericCountersSize = 88;
// Interface "format" in the top two bits of a compact `interface` or in the format word
// of an `interface_expanded`.
constexpr std::uint32_t kIfFormatDiscarded = 1;
constexpr std::uint32_t kIfFormatMultiple = 2;
// "The maximum value, 0x3FFFFFFF, indicates that there is no input or output
// interface": traffic originated or terminated by the agent itself.
constexpr std::uint32_t kIfLocal = 0x3fffffff;
constexpr std::uint32_t kVlanMax = 4095;

// forwardingStatus (IE 89, RFC 7270): status in the top two bits, reason 0 = unknown.
constexpr std::uint8_t kForwardedUnknown = 0x40;
constexpr std::uint8_t kDroppedUnknown = 0x80;
constexpr std::uint8_t kConsumedUnknown = 0xc0;

constexpr std::uint16_t kIpv4TemplateId = 1;
constexpr std::uint16_t kIpv6TemplateId = 2;

// The record layout. Both templates share it except for the address width and the
// ICMP element; flowLabelIPv6 exists only in the IPv6 one.
std::vector<FieldSpec> layout(bool v6) {
  std::vector<FieldSpec> f = {
      {kIanaPen, static_cast<std::uint16_t>(v6 ? 27 : 8), static_cast<std::uint16_t>(v6 ? 16 : 4)},
      {kIanaPen, static_cast<std::uint16_t>(v6 ? 28 : 12), static_cast<std::uint16_t>(v6 ? 16 : 4)},
      {kIanaPen, 4, 1},                                          // protocolIdentifier
      {kIanaPen, 7, 2},                                          // sourceTransportPort
      {kIanaPen, 11, 2},                                         // destinationTransportPort
      {kIanaPen, 6, 2},                                          // tcpControlBits
      {kIanaPen, 5, 1},                                          // ipClassOfService
      {kIanaPen, 192, 1},                                        // ipTTL
      {kIanaPen, static_cast<std::uint16_t>(v6 ? 139 : 32), 2},  // icmpTypeCodeIPv6 / IPv4
      {kIanaPen, 10, 4},                                         // ingressInterface
      {kIanaPen, 14, 4},                                         // egressInterface
      {kIanaPen, 89, 1},                                         // forwardingStatus
      {kIanaPen, 1, 4},                                          // octetDeltaCount
      {kIanaPen, 2, 4},                                          // packetDeltaCount
      {kIanaPen, 34, 4},                                         // samplingInterval
      {kIanaPen, 56, 6},                                         // sourceMacAddress
      {kIanaPen, 80, 6},                                         // destinationMacAddress
      {kIanaPen, 58, 2},                                         // vlanId
      {kIanaPen, 59, 2},                                         // postVlanId
      {kIanaPen, 245, 2},                                        // dot1qCustomerVlanId
      {kIanaPen, 256, 2},                                        // ethernetType
      {kIanaPen, 60, 1},                                         // ipVersion
  };
  if (v6) f.push_back({kIanaPen, 31, 4});  // flowLabelIPv6
  return f;
}

const TemplatePtr& sflow_template(bool v6) {
  // Constant field lists that satisfy every rule of Template::make.
  static const TemplatePtr ipv4 = Template::make(kIpv4TemplateId, layout(false)).value();
  static const TemplatePtr ipv6 = Template::make(kIpv6TemplateId, layout(true)).value();
  return v6 ? ipv6 : ipv4;
}

// What one flow sample says, gathered from its records before the record is written.
struct FlowFields {
  std::uint8_t ip_version = 0;  // 0: no IP header seen
  std::array<std::uint8_t, 16> src{};
  std::array<std::uint8_t, 16> dst{};
  std::uint8_t protocol = 0;
  std::uint16_t src_port = 0, dst_port = 0;
  std::uint16_t tcp_flags = 0;
  std::uint8_t tos = 0;
  std::uint8_t ttl = 0;
  std::uint16_t icmp_type_code = 0;
  std::uint32_t flow_label = 0;
  std::uint32_t ingress = 0, egress = 0;
  std::uint8_t forwarding_status = 0;
  std::uint32_t sampling_rate = 0;
  // Frame length by source: the sampled header's frame_length beats the Ethernet
  // record's length, which beats the IP record's packet length.
  std::uint32_t octets = 0;
  int octets_rank = 0;
  std::array<std::uint8_t, 6> src_mac{}, dst_mac{};
  std::uint16_t ethertype = 0;
  std::uint16_t header_vlan = 0, header_inner_vlan = 0;
  std::optional<std::uint16_t> switch_src_vlan, switch_dst_vlan;
  bool ip_from_header = false;

  void set_octets(std::uint32_t v, int rank) {
    if (rank > octets_rank) {
      octets = v;
      octets_rank = rank;
    }
  }
};

class Decoder {
 public:
  Decoder(Bytes datagram, RecordBatch& out, std::vector<SflowInterfaceCounters>* counters)
      : datagram_(datagram), out_(out), counters_(counters) {}

  Result<DecodeStats> run();

 private:
  Result<void> flow_sample(ByteReader& s, bool expanded);
  Result<void> flow_record(std::uint32_t format, ByteReader& r, FlowFields& f);
  Result<void> counter_sample(ByteReader& s, bool expanded);
  void emit(const FlowFields& f);

  Bytes datagram_;
  RecordBatch& out_;
  std::vector<SflowInterfaceCounters>* counters_;
  DecodeStats stats_;
  MessageMeta meta_;
  IpAddress agent_;
  std::optional<std::uint32_t> message_;
};

std::uint32_t take_u32(ByteReader& r) {
  std::uint32_t v = 0;
  (void)r.read(v);  // callers checked remaining() first
  return v;
}
std::uint64_t take_u64(ByteReader& r) {
  std::uint64_t v = 0;
  (void)r.read(v);
  return v;
}

Result<DecodeStats> Decoder::run() {
  // sample_datagram_v5: version, agent address (type + 4 or 16 bytes),
  // sub_agent_id, sequence_number, uptime, samples<>.
  ByteReader r(datagram_);
  if (r.remaining() < 8) return fail(Errc::truncated_header, 0);
  if (take_u32(r) != kSflowVersion) return fail(Errc::bad_version, 0);
  const std::uint32_t address_type = take_u32(r);
  if (address_type == 1) {
    auto a = r.take(4);
    if (!a) return fail(Errc::truncated_header, r.offset());
    agent_ = IpAddress::v4(a->first<4>());
  } else if (address_type == 2) {
    auto a = r.take(16);
    if (!a) return fail(Errc::truncated_header, r.offset());
    agent_ = IpAddress::v6(a->first<16>());
  } else {
    return fail(Errc::sflow_address_type, 4);
  }
  if (r.remaining() < 16) return fail(Errc::truncated_header, r.offset());
  meta_.protocol = Protocol::sflow_v5;
  meta_.observation_domain = take_u32(r);  // sub_agent_id
  meta_.sequence = take_u32(r);
  meta_.sys_uptime_ms = take_u32(r);
  meta_.export_time = 0;  // sFlow carries no wall-clock time
  const std::size_t count_at = r.offset();
  const std::uint32_t count = take_u32(r);
  if (count > limits::kMaxSflowSamples) return fail(Errc::sflow_too_many, count_at);
  stats_.protocol = Protocol::sflow_v5;
  stats_.observation_domain = meta_.observation_domain;
  stats_.sequence = meta_.sequence;

  for (std::uint32_t i = 0; i < count; ++i) {
    // sample_record: data_format (enterprise(20) | format(12)), opaque sample_data<>.
    if (r.remaining() < 8) return fail(Errc::count_mismatch, count_at);
    const std::uint32_t format = take_u32(r);
    const std::size_t length_at = r.offset();
    const std::uint32_t length = take_u32(r);
    if (length > r.remaining()) return fail(Errc::sflow_sample_length, length_at);
    const std::size_t body_at = r.offset();
    ByteReader s(*r.take(length), body_at);
    if ((format >> 12) != 0) continue;  // other enterprises: skipped by length
    Result<void> ok;
    switch (format & 0xfff) {
      case kFlowSample:
        ok = flow_sample(s, false);
        break;
      case kExpandedFlowSample:
        ok = flow_sample(s, true);
        break;
      case kCounterSample:
        ok = counter_sample(s, false);
        break;
      case kExpandedCounterSample:
        ok = counter_sample(s, true);
        break;
      default:
        break;  // unknown standard formats: skipped by length
    }
    if (!ok) return tl::unexpected(ok.error());
  }
  // Bytes after the announced samples are ignored, as tshark and other collectors do:
  // test tools and agents leave them (akvorado's fixtures cut a 5-sample datagram to
  // one sample by its count alone), and every sample we read was whole.
  return stats_;
}

// Reads an interface of a compact (format in the top 2 bits) or expanded (format
// word + value) flow sample; returns {format, value}.
std::pair<std::uint32_t, std::uint32_t> read_interface(ByteReader& s, bool expanded) {
  if (expanded) {
    const std::uint32_t format = take_u32(s);
    return {format, take_u32(s)};
  }
  const std::uint32_t v = take_u32(s);
  return {v >> 30, v & kIfLocal};
}

Result<void> Decoder::flow_sample(ByteReader& s, bool expanded) {
  // flow_sample: sequence_number, source_id, sampling_rate, sample_pool,
  // drops, input, output, flow_records<>. flow_sample_expanded: the source id and
  // both interfaces as two words each.
  const std::size_t fixed = expanded ? 40 : 28;
  if (s.remaining() < fixed + 4) return fail(Errc::sflow_sample_length, s.offset());
  FlowFields f;
  (void)take_u32(s);  // sequence_number
  (void)take_u32(s);  // source id (type + index)
  if (expanded) (void)take_u32(s);
  f.sampling_rate = take_u32(s);
  (void)take_u32(s);  // sample_pool
  (void)take_u32(s);  // drops
  const auto [in_format, in_value] = read_interface(s, expanded);
  const auto [out_format, out_value] = read_interface(s, expanded);
  // Input: an ifIndex, 0 when unknown, kIfLocal for packets the agent sent itself.
  f.ingress = in_format == 0 && in_value != kIfLocal ? in_value : 0;
  if (out_format == kIfFormatDiscarded) {
    f.forwarding_status = kDroppedUnknown;  // the sFlow reason code has no RFC 7270 twin
  } else if (out_format == kIfFormatMultiple) {
    f.forwarding_status = kForwardedUnknown;
  } else if (out_format == 0 && out_value == kIfLocal) {
    f.forwarding_status = kConsumedUnknown;
  } else if (out_format == 0 && out_value != 0) {
    f.egress = out_value;
    f.forwarding_status = kForwardedUnknown;
  }

  const std::size_t count_at = s.offset();
  const std::uint32_t count = take_u32(s);
  if (count > limits::kMaxSflowRecordsPerSample) return fail(Errc::sflow_too_many, count_at);
  for (std::uint32_t i = 0; i < count; ++i) {
    if (s.remaining() < 8) return fail(Errc::sflow_sample_length, s.offset());
    const std::uint32_t format = take_u32(s);
    const std::size_t length_at = s.offset();
    const std::uint32_t length = take_u32(s);
    if (length > s.remaining()) return fail(Errc::sflow_record_length, length_at);
    const std::size_t body_at = s.offset();
    ByteReader r(*s.take(length), body_at);
    if ((format >> 12) != 0) continue;
    if (auto ok = flow_record(format & 0xfff, r, f); !ok) return ok;
  }
  emit(f);  // bytes after the last record are ignored, like those after the last sample
  return {};
}

Result<void> Decoder::flow_record(std::uint32_t format, ByteReader& r, FlowFields& f) {
  const std::size_t at = r.offset();
  switch (format) {
    case kRawPacketHeader: {
      // sampled_header: header_protocol, frame_length, stripped, header<>.
      if (r.remaining() < kRawHeaderFixed) return fail(Errc::sflow_record_length, at);
      const std::uint32_t protocol = take_u32(r);
      const std::uint32_t frame_length = take_u32(r);
      (void)take_u32(r);  // stripped
      const std::uint32_t header_length = take_u32(r);
      if (header_length > r.remaining()) return fail(Errc::sflow_record_length, at + 12);
      // Parsing looks at headers only; a longer sample is read like a shorter snaplen.
      Bytes header =
          r.rest().first(std::min<std::size_t>(header_length, limits::kMaxSflowHeaderBytes));
      f.set_octets(frame_length, 3);
      int link = -1;
      if (protocol == kHeaderEthernet) link = packet::link_type::kEthernet;
      if (protocol == kHeaderIpv4) link = packet::link_type::kIpv4;
      if (protocol == kHeaderIpv6) link = packet::link_type::kIpv6;
      if (link < 0) return {};
      // Tunnels stay in place: the agent forwarded the outer packet, so its
      // interfaces and counters describe that one.
      packet::PacketView v;
      (void)packet::parse_packet_into(link, header, packet::ParseOptions{}, v);
      if (v.has_src_mac) f.src_mac = v.src_mac;
      if (v.has_dst_mac) f.dst_mac = v.dst_mac;
      if (v.vlan_count > 0) f.header_vlan = v.vlan_outer;
      if (v.vlan_count > 1) f.header_inner_vlan = v.vlan_inner;
      f.ethertype = v.ethertype;
      if (!v.is_ip()) return {};
      f.ip_from_header = true;
      f.ip_version = v.ip_version;
      f.src = v.src_addr;
      f.dst = v.dst_addr;
      f.protocol = v.protocol;
      f.tos = v.tos;
      f.ttl = v.ttl;
      f.flow_label = v.flow_label;
      if (v.has_l4) {
        f.src_port = v.src_port;
        f.dst_port = v.dst_port;
        f.tcp_flags = v.tcp_flags;
        if (v.protocol == 1 || v.protocol == 58) {
          f.icmp_type_code = static_cast<std::uint16_t>(v.icmp_type << 8 | v.icmp_code);
        }
      }
      return {};
    }
    case kEthernetFrameData: {
      // sampled_ethernet: length, src_mac, dst_mac (opaque[6], XDR-padded to 8), type.
      if (r.remaining() < kEthernetDataSize) return fail(Errc::sflow_record_length, at);
      const std::uint32_t length = take_u32(r);
      auto src = r.take(8);
      auto dst = r.take(8);
      const std::uint32_t type = take_u32(r);
      f.set_octets(length, 2);
      if (f.src_mac == std::array<std::uint8_t, 6>{}) std::memcpy(f.src_mac.data(), src->data(), 6);
      if (f.dst_mac == std::array<std::uint8_t, 6>{}) std::memcpy(f.dst_mac.data(), dst->data(), 6);
      if (f.ethertype == 0) f.ethertype = static_cast<std::uint16_t>(type);
      return {};
    }
    case kIpv4Data:
    case kIpv6Data: {
      // sampled_ipv4 / sampled_ipv6: length, protocol, src_ip, dst_ip, src_port,
      // dst_port, tcp_flags, tos (IPv4) or priority (IPv6).
      const bool v6 = format == kIpv6Data;
      if (r.remaining() < (v6 ? kIpv6DataSize : kIpv4DataSize)) {
        return fail(Errc::sflow_record_length, at);
      }
      const std::uint32_t length = take_u32(r);
      const std::uint32_t protocol = take_u32(r);
      auto src = r.take(v6 ? 16 : 4);
      auto dst = r.take(v6 ? 16 : 4);
      const std::uint32_t src_port = take_u32(r);
      const std::uint32_t dst_port = take_u32(r);
      const std::uint32_t tcp_flags = take_u32(r);
      const std::uint32_t tos = take_u32(r);
      f.set_octets(length, 1);
      if (f.ip_from_header) return {};  // the sampled header said it all, and more
      f.ip_version = v6 ? 6 : 4;
      f.src = {};
      f.dst = {};
      std::memcpy(f.src.data(), src->data(), src->size());
      std::memcpy(f.dst.data(), dst->data(), dst->size());
      f.protocol = static_cast<std::uint8_t>(protocol);
      f.src_port = static_cast<std::uint16_t>(src_port);
      f.dst_port = static_cast<std::uint16_t>(dst_port);
      f.tcp_flags = static_cast<std::uint16_t>(tcp_flags & 0x0fff);
      f.tos = static_cast<std::uint8_t>(tos);
      f.ethertype = v6 ? 0x86dd : 0x0800;
      return {};
    }
    case kExtendedSwitch: {
      // extended_switch: src_vlan, src_priority, dst_vlan, dst_priority. Agents send
      // 0xFFFFFFFF for "unknown"; anything above 4095 is not a VLAN id.
      if (r.remaining() < kExtendedSwitchSize) return fail(Errc::sflow_record_length, at);
      const std::uint32_t src_vlan = take_u32(r);
      (void)take_u32(r);
      const std::uint32_t dst_vlan = take_u32(r);
      if (src_vlan <= kVlanMax) f.switch_src_vlan = static_cast<std::uint16_t>(src_vlan);
      if (dst_vlan <= kVlanMax) f.switch_dst_vlan = static_cast<std::uint16_t>(dst_vlan);
      return {};
    }
    default:
      return {};  // gateway, router, user, URL, MPLS, ...: skipped by length
  }
}

// Appends the record for one flow sample, in the order of layout().
void Decoder::emit(const FlowFields& f) {
  const bool v6 = f.ip_version == 6;
  const TemplatePtr& t = sflow_template(v6);
  if (!message_) message_ = out_.add_message(meta_);
  std::vector<std::byte>& data = out_.storage();
  const std::size_t at = data.size();
  const std::uint16_t length = t->min_record_length();
  data.resize(at + length);
  std::byte* p = data.data() + at;
  const auto put_bytes = [&p](const std::uint8_t* src, std::size_t n) {
    std::memcpy(p, src, n);
    p += n;
  };
  const auto put8 = [&p](std::uint8_t v) { *p++ = static_cast<std::byte>(v); };
  const auto put16 = [&p](std::uint16_t v) {
    store_be(p, v);
    p += 2;
  };
  const auto put32 = [&p](std::uint32_t v) {
    store_be(p, v);
    p += 4;
  };
  put_bytes(f.src.data(), v6 ? 16 : 4);
  put_bytes(f.dst.data(), v6 ? 16 : 4);
  put8(f.protocol);
  put16(f.src_port);
  put16(f.dst_port);
  put16(f.tcp_flags);
  put8(f.tos);
  put8(f.ttl);
  put16(f.icmp_type_code);
  put32(f.ingress);
  put32(f.egress);
  put8(f.forwarding_status);
  put32(f.octets);
  put32(1);  // packetDeltaCount: one sampled packet, not scaled
  put32(f.sampling_rate);
  put_bytes(f.src_mac.data(), 6);
  put_bytes(f.dst_mac.data(), 6);
  // The switch's own view of the VLANs beats the outer tag in the sampled header,
  // which is absent when the switch strips tags before sampling.
  put16(f.switch_src_vlan.value_or(f.header_vlan));
  put16(f.switch_dst_vlan.value_or(0));
  put16(f.header_inner_vlan);
  put16(f.ethertype);
  put8(f.ip_version);
  if (v6) put32(f.flow_label);
  out_.add(static_cast<std::uint32_t>(at), length, out_.use_template(t), *message_);
  ++stats_.data_records;
}

Result<void> Decoder::counter_sample(ByteReader& s, bool expanded) {
  // counters_sample: sequence_number, source_id, counters<>;
  // counters_sample_expanded: source id as type + index.
  const std::size_t fixed = expanded ? 12 : 8;
  if (s.remaining() < fixed + 4) return fail(Errc::sflow_sample_length, s.offset());
  (void)take_u32(s);  // sequence_number
  std::uint32_t source_id = take_u32(s);
  if (expanded) {
    // The expanded index may need more than 24 bits; the compact form keeps 24.
    source_id = (source_id << 24) | (take_u32(s) & 0x00ffffff);
  }
  const std::size_t count_at = s.offset();
  const std::uint32_t count = take_u32(s);
  if (count > limits::kMaxSflowRecordsPerSample) return fail(Errc::sflow_too_many, count_at);
  for (std::uint32_t i = 0; i < count; ++i) {
    if (s.remaining() < 8) return fail(Errc::sflow_sample_length, s.offset());
    const std::uint32_t format = take_u32(s);
    const std::size_t length_at = s.offset();
    const std::uint32_t length = take_u32(s);
    if (length > s.remaining()) return fail(Errc::sflow_record_length, length_at);
    const std::size_t body_at = s.offset();
    ByteReader r(*s.take(length), body_at);
    if (format != kGenericInterfaceCounters) continue;  // ethernet, processor, ...: skipped
    // if_counters (counter record 0:1).
    if (r.remaining() < kGenericCountersSize) return fail(Errc::sflow_record_length, length_at);
    ++stats_.counter_samples;
    if (counters_ == nullptr) continue;
    SflowInterfaceCounters c;
    c.agent = agent_;
    c.sub_agent_id = meta_.observation_domain;
    c.source_id = source_id;
    c.if_index = take_u32(r);
    c.if_type = take_u32(r);
    c.if_speed = take_u64(r);
    c.if_direction = take_u32(r);
    c.if_status = take_u32(r);
    c.in_octets = take_u64(r);
    c.in_ucast_pkts = take_u32(r);
    c.in_multicast_pkts = take_u32(r);
    c.in_broadcast_pkts = take_u32(r);
    c.in_discards = take_u32(r);
    c.in_errors = take_u32(r);
    c.in_unknown_protos = take_u32(r);
    c.out_octets = take_u64(r);
    c.out_ucast_pkts = take_u32(r);
    c.out_multicast_pkts = take_u32(r);
    c.out_broadcast_pkts = take_u32(r);
    c.out_discards = take_u32(r);
    c.out_errors = take_u32(r);
    c.promiscuous_mode = take_u32(r);
    counters_->push_back(c);
  }
  return {};
}

}  // namespace

Result<DecodeStats> decode_sflow_v5(Bytes datagram, RecordBatch& out,
                                    std::vector<SflowInterfaceCounters>* counters) {
  // All or nothing (decode.hpp): records and counters of a datagram that fails
  // half-way are taken back.
  const RecordBatch::Mark mark = out.mark();
  const std::size_t counters_before = counters != nullptr ? counters->size() : 0;
  auto result = Decoder(datagram, out, counters).run();
  if (!result) {
    out.rollback(mark);
    if (counters != nullptr) counters->resize(counters_before);
  }
  return result;
}

}  // namespace flowsec::ipfix
