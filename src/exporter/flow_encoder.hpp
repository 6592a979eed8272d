#pragma once
// FlowEncoder: the probe's flows (flow::FlowRecord) → IPFIX data records in a
// RecordBatch, laid out by the -T field list (nProbe's default template when -T is
// absent). The Exporter then sends the batch as v5, v9 or IPFIX.
//
// Contract: one thread at a time (the probe loop); encode() never throws and never
// fails a flow: a field the encoder cannot compute is written as its zero value (0,
// empty string), and unsupported_fields() names those once, for a start-up warning.
// Values larger than their field saturate (IN_BYTES in nProbe's 4 bytes stops at
// 4294967295 rather than wrapping).
//
// Records and templates:
//  - IPv4 and IPv6 flows: when the list names only one family's address fields
//    (IPV4_SRC_ADDR... or IPV6_SRC_ADDR...), flows of the other family use a second
//    template in which those fields are swapped for their twins (8↔27, 12↔28, 15↔62,
//    9↔29, 13↔30), as nProbe does. When it names both, one template serves both and
//    the other family's fields are zero.
//  - SPEC §4 "a template with no OUT_ fields still exports both directions": when the list
//    has neither OUT_BYTES/OUT_PKTS nor RFC 5103 reverse counters, a flow with
//    server → client packets yields a second record with the key reversed and the "out"
//    counters as its "in" counters (BIFLOW_DIRECTION 2 = reverseInitiator).
//  - Times: FIRST_SWITCHED/LAST_SWITCHED (flowStart/EndSysUpTime, 22/21) are ms since
//    `start_time_ms` — the Exporter's start_time_ms(), which its v5/v9 headers' sysUpTime
//    counts from and which is the exporting process's systemInitTimeMilliseconds (IE 160)
//    for IPFIX. A flow outside the 32-bit window from that instant (older, or more than
//    49.7 days later) is put in a message of its own whose metadata counts from the
//    flow's start, so file outputs still show its true times; the Exporter can only
//    clamp such a flow into its own sysUpTime window. Absolute elements (150..155) are
//    written from the packet timestamps directly.
//  - L7_PROTO (ntop 118): nDPI's application id, or the master protocol's when the
//    application is unknown; L7_PROTO_NAME through the injected resolver (the flow module
//    owns nDPI, this module does not depend on it).
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "exporter/field_codec.hpp"
#include "flow/flow_record.hpp"
#include "ipfix/record.hpp"
#include "ipfix/template.hpp"

namespace flowsec::exporter {

struct FlowEncoderOptions {
  std::vector<ipfix::FieldSpec> fields;  // -T; empty = ipfix::nprobe_default_template()
  std::int64_t start_time_ms = 0;        // sysUpTime origin: Exporter::start_time_ms()
  // nDPI's name for (master, app), e.g. "TLS.Google"; empty function = empty names.
  std::function<std::string(std::uint16_t master, std::uint16_t app)> l7_name;
  std::uint32_t observation_domain = 0;  // copied into the batch's message metadata
};

class FlowEncoder {
 public:
  // Errors (start-up): a field list the template rules refuse (ipfix::Template::make).
  [[nodiscard]] static Expected<FlowEncoder, std::string> create(FlowEncoderOptions options);

  // Appends one or two records per flow to `out`.
  void encode(std::span<const flow::FlowRecord> flows, ipfix::RecordBatch& out);
  void encode(const flow::FlowRecord& flow, ipfix::RecordBatch& out) {
    encode(std::span<const flow::FlowRecord>(&flow, 1), out);
  }
  // The same, one flow at a time, for a producer that holds no array of flows (the
  // probe's flow cache hands each over as it ends, and copying them was a tenth of the
  // export cost): begin() with the batch and about how many flows will come, add() each,
  // finish() before anything reads the batch. encode() is exactly begin, add..., finish.
  // `out` must outlive finish(); a begin() finishes the previous batch.
  void begin(ipfix::RecordBatch& out, std::size_t expected_flows);
  void add(const flow::FlowRecord& flow);
  void finish();
  // Flows add()ed since begin(); 0 when no batch is open.
  [[nodiscard]] std::size_t open_flows() const { return open_.flows; }

  // nProbe names of the listed fields this encoder writes as zero/empty, in list order.
  [[nodiscard]] std::vector<std::string> unsupported_fields() const;
  // True when a flow's two directions become two records (no OUT_ counters in the list).
  [[nodiscard]] bool splits_directions() const { return split_; }
  [[nodiscard]] const ipfix::TemplatePtr& v4_template() const { return v4_.tmpl; }
  [[nodiscard]] const ipfix::TemplatePtr& v6_template() const { return v6_.tmpl; }

  // What the encoder computes for one field (defined in the .cpp).
  enum class Kind : std::uint8_t;

 private:
  FlowEncoder() = default;
  struct Field {
    Kind kind;
    ipfix::DataType type;
    std::optional<TimeElement> time;  // first_time/last_time: the element's unit
    // Decided once per template, not per record (fixed-length templates only): where the
    // field sits in a record, whether a number is stored in it (stores_unsigned()), and
    // the largest value its length holds (max_unsigned()).
    std::uint16_t offset = 0;
    bool number = false;
    std::uint64_t max = 0;
    // A number of 1..8 bytes, written as one big-endian 8-byte store of
    // min(value & mask, max) << shift: its bytes, then zeros over the next 8 - length
    // bytes, which belong to later fields (written after it) or to the record's slack.
    bool direct = false;
    std::uint8_t shift = 0;
    std::uint64_t mask = ~std::uint64_t{0};  // TCP flags in one byte: cut, not saturated
  };
  // One address family's template and how each of its fields is computed. `visit`: the
  // fields encode_fields() writes, in order: all of them, except in a fixed-length
  // template, where a record starts zeroed and the fields that are always zero are skipped.
  struct Layout {
    ipfix::TemplatePtr tmpl;
    std::vector<Field> fields;
    std::vector<std::uint16_t> visit;
  };
  [[nodiscard]] static Layout layout_of(ipfix::TemplatePtr t);
  // `reverse`: the flow's server → client record (splits_directions()).
  void encode_one(const flow::FlowRecord& f, bool reverse, const Layout& l,
                  std::uint16_t template_index, std::uint32_t message_index, std::int64_t origin_ms,
                  ipfix::RecordBatch& out);
  // The flow as one record sees it (defined in the .cpp).
  struct Side;
  // The value of a field whose kind is a number; false for the other kinds.
  [[nodiscard]] static bool number_of(Kind kind, const Side& s, std::uint64_t& v);
  // Writes field `i` of one record through `w` (the writers are in the .cpp).
  template <class Writer>
  void encode_field(std::size_t i, const Side& s, const Layout& l, Writer& w) const;

  [[nodiscard]] ipfix::MessageMeta message_meta(std::int64_t last_ns, std::int64_t origin_ms) const;

  // The batch between begin() and finish().
  struct Open {
    ipfix::RecordBatch* out = nullptr;
    ipfix::RecordBatch::Mark mark{};  // the batch as begin() found it
    std::uint32_t shared = 0;         // message of the flows within the uptime window
    std::int64_t last_ns = 0;         // latest packet of any flow: that message's export time
    std::size_t flows = 0;
    int v4_index = -1, v6_index = -1;  // the templates' indices in `out`, once added
    // Fixed-length templates: begin() sized the storage for the expected records, zeroed,
    // and records are written at `end`; finish() trims the storage to it. (Growing the
    // vector record by record was a third of the encoder's instructions.)
    bool presized = false;
    std::size_t end = 0;
  };

  FlowEncoderOptions options_;
  Layout v4_, v6_;
  Open open_;
  bool split_ = false;
  std::vector<std::byte> scratch_;
};

}  // namespace flowsec::exporter
