#pragma once
// L7Classifier: application-protocol classification with nDPI (Debian libndpi 4.2; SPEC §5
// "L7"), fed by FlowCache with the packets of flows it has not classified yet.
//
// Contract:
//  - Single-threaded: one classifier per FlowCache (nDPI's detection module is not
//    thread-safe); not copyable. Create it only when L7 is on (--no-l7: pass nullptr to
//    FlowCache).
//  - State is a side table indexed by the FlowCache's flow slot, so the cache's own entry
//    stays within SPEC §8's 256 bytes. nDPI flow state is allocated on a flow's first
//    packet and released as soon as the flow is classified, after kDefaultMaxPackets
//    packets (nDPI gives up and guesses), or when the flow is exported (finish()).
//    Released states are recycled through a bounded pool, so steady state does not
//    allocate in this layer (nDPI itself may allocate inside its dissectors).
//  - Input is untrusted: nDPI gets the IP packet as captured (bounded by the capture and
//    the IP length); no errors are reported, an unclassified flow stays 0/0.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "packet/packet_view.hpp"

struct ndpi_detection_module_struct;
struct ndpi_flow_struct;

namespace flowsec::flow {

struct NdpiApi;  // nDPI's functions, loaded at run time (l7_classifier.cpp)

struct L7Result {
  std::uint16_t master = 0;     // nDPI master protocol id (e.g. 91 TLS), 0 when none
  std::uint16_t app = 0;        // nDPI application protocol id (e.g. 126 Google)
  std::uint8_t confidence = 0;  // nDPI ndpi_confidence_t (0 unknown … 4 DPI)
};

struct L7Options {
  std::uint16_t max_packets = 32;  // packets per flow before nDPI gives up
  std::size_t pool_size = 4096;    // released nDPI flow states kept for reuse
};

struct L7Stats {
  std::uint64_t packets = 0;           // packets handed to nDPI
  std::uint64_t flows_classified = 0;  // detected by DPI within max_packets
  std::uint64_t flows_given_up = 0;    // max_packets reached, or exported first (guess)
  std::uint64_t states_in_use = 0;
};

class L7Classifier {
 public:
  // Fails (with the reason) when libndpi cannot be loaded (it is loaded by the first
  // create(), not at program start) or nDPI cannot initialise.
  static Expected<std::unique_ptr<L7Classifier>, std::string> create(const L7Options& options = {});
  ~L7Classifier();
  L7Classifier(const L7Classifier&) = delete;
  L7Classifier& operator=(const L7Classifier&) = delete;

  // Makes the side table hold flow slots [0, n), growing it geometrically. process()
  // calls it as new slots appear, so the table follows the flows seen, not -M: sized for
  // -M at construction it cost 9 MB of page faults (~30 ms) at every start.
  void reserve_slots(std::uint32_t n);

  // Feeds one packet of the flow in `slot`. `frame` is the captured frame `view` was
  // parsed from. Returns true when classification is final and `out` is set; the slot's
  // state is then released and the caller stops feeding this flow.
  bool process(std::uint32_t slot, std::span<const std::byte> frame, const packet::PacketView& view,
               std::int64_t timestamp_ns, L7Result& out);

  // The flow is being exported before classification ended: nDPI's best guess, and the
  // slot's state is released. A slot without state gives 0/0.
  L7Result finish(std::uint32_t slot);

  // Drops the slot's state without a result.
  void release(std::uint32_t slot);

  // nProbe-style name ("TLS.Google", "DNS", "Unknown"), from this classifier's module.
  [[nodiscard]] std::string name(std::uint16_t master, std::uint16_t app) const;

  [[nodiscard]] const L7Stats& stats() const { return stats_; }
  // Flow slots the side table holds now (see reserve_slots()).
  [[nodiscard]] std::size_t slot_capacity() const { return slots_.size(); }

 private:
  L7Classifier(const L7Options& options, const NdpiApi& ndpi, ndpi_detection_module_struct* module);
  ndpi_flow_struct* acquire();
  void recycle(ndpi_flow_struct* f);

  L7Options options_;
  const NdpiApi& ndpi_;
  ndpi_detection_module_struct* module_;
  std::vector<ndpi_flow_struct*> slots_;  // per flow slot; nullptr when no state
  std::vector<std::uint8_t> packets_;     // packets fed per slot (saturating)
  std::vector<ndpi_flow_struct*> pool_;   // cleared states ready for reuse
  std::size_t flow_struct_size_ = 0;
  L7Stats stats_;
};

// nProbe's L7_PROTO_NAME for a master/application pair: "master.app" when both are set
// and differ ("TLS.Google", "HTTP.Google"), else the one that is set ("DNS"); "Unknown"
// for 0/0. Uses nDPI's protocol names through a process-wide module built on first use
// (thread-safe, read-only afterwards); "Unknown" for every pair when libndpi cannot be
// loaded.
[[nodiscard]] std::string l7_protocol_name(std::uint16_t master, std::uint16_t app);

}  // namespace flowsec::flow
