#include "ipfix/netflow_v5.hpp"

#include "common/bytes.hpp"
#include "ipfix/limits.hpp"

namespace flowsec::ipfix {

std::vector<std::byte> encode_netflow_v5(const NetflowV5Header& header,
                                         std::span<const NetflowV5Record> records) {
  std::vector<std::byte> out;
  if (records.empty() || records.size() > limits::kMaxV5Records) return out;
  out.reserve(kNetflowV5HeaderSize + kNetflowV5RecordSize * records.size());
  ByteWriter w(out);
  w.u16(kNetflowV5Version);
  w.u16(static_cast<std::uint16_t>(records.size()));
  w.u32(header.sys_uptime_ms);
  w.u32(header.unix_secs);
  w.u32(header.unix_nsecs);
  w.u32(header.flow_sequence);
  w.u8(header.engine_type);
  w.u8(header.engine_id);
  w.u16(header.sampling_interval);
  for (const NetflowV5Record& r : records) {
    w.u32(r.src_addr);
    w.u32(r.dst_addr);
    w.u32(r.next_hop);
    w.u16(r.input);
    w.u16(r.output);
    w.u32(r.packets);
    w.u32(r.octets);
    w.u32(r.first);
    w.u32(r.last);
    w.u16(r.src_port);
    w.u16(r.dst_port);
    w.u8(0);  // pad1
    w.u8(r.tcp_flags);
    w.u8(r.protocol);
    w.u8(r.tos);
    w.u16(r.src_as);
    w.u16(r.dst_as);
    w.u8(r.src_mask);
    w.u8(r.dst_mask);
    w.u16(0);  // pad2
  }
  return out;
}

const TemplatePtr& netflow_v5_template() {
  // The v5 record, in wire order, as IPFIX elements with the v5 field widths
  // (RFC 7011 §6.2 reduced-size encoding where v5 is narrower than the element).
  static const TemplatePtr shared = [] {
    auto t = Template::make(kNetflowV5TemplateId,
                            {
                                {kIanaPen, 8, 4},    // srcaddr: sourceIPv4Address
                                {kIanaPen, 12, 4},   // dstaddr: destinationIPv4Address
                                {kIanaPen, 15, 4},   // nexthop: ipNextHopIPv4Address
                                {kIanaPen, 10, 2},   // input: ingressInterface
                                {kIanaPen, 14, 2},   // output: egressInterface
                                {kIanaPen, 2, 4},    // dPkts: packetDeltaCount
                                {kIanaPen, 1, 4},    // dOctets: octetDeltaCount
                                {kIanaPen, 22, 4},   // First: flowStartSysUpTime
                                {kIanaPen, 21, 4},   // Last: flowEndSysUpTime
                                {kIanaPen, 7, 2},    // srcport: sourceTransportPort
                                {kIanaPen, 11, 2},   // dstport: destinationTransportPort
                                {kIanaPen, 210, 1},  // pad1: paddingOctets
                                {kIanaPen, 6, 1},    // tcp_flags: tcpControlBits
                                {kIanaPen, 4, 1},    // prot: protocolIdentifier
                                {kIanaPen, 5, 1},    // tos: ipClassOfService
                                {kIanaPen, 16, 2},   // src_as: bgpSourceAsNumber
                                {kIanaPen, 17, 2},   // dst_as: bgpDestinationAsNumber
                                {kIanaPen, 9, 1},    // src_mask: sourceIPv4PrefixLength
                                {kIanaPen, 13, 1},   // dst_mask: destinationIPv4PrefixLength
                                {kIanaPen, 210, 2},  // pad2: paddingOctets
                            });
    // The field list above is a constant that satisfies every rule of Template::make.
    return std::move(t).value();
  }();
  return shared;
}

}  // namespace flowsec::ipfix
