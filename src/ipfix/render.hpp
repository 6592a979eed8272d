#pragma once
// Renders record batches as text, JSON lines or CSV for the file outputs
// (SPEC §6 "-P DIR", "-D t|j|c"), and as the JSON flow objects ntopng reads over
// ZMQ (sinks/ntopng_sink.hpp).
//
// Contract: output is appended to a caller-owned std::string; nothing else is
// allocated per record (per-template state is built once and cached). A
// RecordRenderer is used by one thread at a time; it keeps the templates it has
// seen alive (bounded cache) and, for CSV, remembers the last header written.
// Rendering never fails: a value whose length its type cannot have is written
// as hex, like an unknown element.
//
// Keys: nProbe field names via output_name() (IPV4_SRC_ADDR, IN_BYTES, ...);
// unknown elements "E<enterprise>_<id>". A name that occurs twice in one
// template gets "_2", "_3"... so JSON keys and CSV columns stay unique.
// paddingOctets (210) is left out (RFC 7011 §3.3.1). After the template's fields
// come EXPORTER_IPV4_ADDRESS or EXPORTER_IPV6_ADDRESS (batch.exporter.address,
// left out when unspecified) and EXPORTER_TLS_IDENTITY (when non-empty). If the
// record itself carries a field of that name (e.g. exporterIPv4Address 130 from a
// proxying nProbe), the record's value wins and the batch's is not added.
//
// Values by type (RFC 7011 §6.1):
//  - integers: decimal; float32/float64: shortest round-trip decimal (JSON: NaN
//    and infinities as null; text/CSV: nan, inf, -inf);
//  - boolean: true/false; macAddress: aa:bb:cc:dd:ee:ff;
//  - addresses: dotted quad / RFC 5952 text;
//  - string: UTF-8; a byte that is not part of valid UTF-8 is written as the four
//    characters \xHH (in JSON source "\\xHH", so the line stays valid JSON and the
//    parsed string holds \xHH); trailing NUL padding of fixed-length fields is
//    dropped;
//  - octetArray, basicList, subTemplateList, subTemplateMultiList, unknown
//    elements: lowercase hex, no separators;
//  - dateTime*: integer count of the type's own unit since 1970 —
//    dateTimeSeconds as epoch seconds, dateTimeMilliseconds as epoch ms (as
//    nProbe's FLOW_START_MILLISECONDS), dateTimeMicroseconds as epoch µs,
//    dateTimeNanoseconds as epoch ns (the last two converted from NTP format);
//  - flowStartSysUpTime (22, FIRST_SWITCHED) / flowEndSysUpTime (21,
//    LAST_SWITCHED): epoch seconds, as nProbe prints them. If the record has
//    systemInitTimeMilliseconds (160): (init + value) / 1000. Else, when the
//    message header has export_time and sys_uptime_ms (NetFlow v5/v9, sFlow):
//    export_time - (sys_uptime_ms - value) / 1000, the difference taken modulo
//    2^32 as a signed number so an uptime wrap (49.7 days) or a value slightly
//    ahead of the header's uptime both come out right. Otherwise the raw value.
//
// Formats:
//  - text (-D t): one line per record in logfmt style: NAME=value pairs
//    separated by one space. A string value is double-quoted when it is empty
//    or contains a space, '=', '"', '\' or a byte that needs escaping; inside
//    quotes \" \\ \n \r \t and \xHH are used. Other values never need quotes.
//  - JSON lines (-D j): one RFC 8259 object per line, numbers and booleans
//    unquoted, everything else a string.
//  - ntopng JSON: the JSON lines rules (same code path, same values), but each key
//    is the element's NetFlow v9 field type in decimal, as nProbe sends flows to
//    ntopng: IANA elements by id ("8" = IPV4_SRC_ADDR, "1" = IN_BYTES), ntop's
//    enterprise-35632 elements as 57472 + id ("57590" = L7_PROTO), elements that came
//    from high v9 types (ie_registry.hpp kV9HighTypePen) as 32768 + id; elements with
//    no v9 type (RFC 5103 reverse elements, other enterprises) keep their name key.
//    The exporter address is "130" (IPv4) / "131" (IPv6); EXPORTER_TLS_IDENTITY keeps
//    its name. Repeated keys get "_2", ... as above.
//  - CSV (-D c): RFC 4180, comma separated, "\n" line ends; a header line of
//    column names before the first record and again whenever the column set
//    changes (another template, or the exporter columns change). Fields with
//    ',', '"', CR or LF are quoted with "" doubling. Control characters other
//    than TAB/CR/LF and non-UTF-8 bytes in strings are written as \xHH.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ipfix/record.hpp"

namespace flowsec::ipfix {

enum class RenderFormat : std::uint8_t { text, json_lines, csv, ntopng_json };

// What CSV output remembers between batches (one per output file).
struct CsvState {
  std::string last_header;     // last header line written, without the newline
  std::uint64_t last_key = 0;  // (plan, exporter columns) the header was checked for; 0 = none
  void reset() { *this = CsvState{}; }
};

class RecordRenderer {
 public:
  explicit RecordRenderer(RenderFormat format);
  ~RecordRenderer();
  RecordRenderer(RecordRenderer&&) noexcept;
  RecordRenderer& operator=(RecordRenderer&&) noexcept;

  [[nodiscard]] RenderFormat format() const { return format_; }
  // Appends every record of `batch` to `out`, one line each (CSV: plus header lines).
  void render(const RecordBatch& batch, std::string& out);
  // Appends with an external CSV state (only used by the CSV format).
  void render(const RecordBatch& batch, std::string& out, CsvState& csv);
  // Record by record, for outputs that cut their messages at record boundaries
  // (ntopng): `each` is called once per record, in order, with exactly the text
  // render() would append for it minus the final "\n" (JSON: one object; CSV: a
  // due header line and "\n" come first). The view is valid during the call only.
  using RecordCallback = std::function<void(std::string_view record)>;
  void render_each(const RecordBatch& batch, const RecordCallback& each);
  // Starts a new CSV file: the next record is preceded by a header again.
  void reset() { csv_.reset(); }

 private:
  void render_records(const RecordBatch& batch, std::string& dest, CsvState& csv,
                      const RecordCallback* each);
  struct Plan;
  struct Impl;
  RenderFormat format_;
  CsvState csv_;
  std::unique_ptr<Impl> impl_;
};

// One-shot helpers. They rebuild per-template state on every call; a long-lived
// output should keep a RecordRenderer instead.
void render_text(const RecordBatch& batch, std::string& out);
void render_json_lines(const RecordBatch& batch, std::string& out);
void render_csv(const RecordBatch& batch, std::string& out, CsvState& state);

// Appends `s` as a JSON string exactly as the JSON renderers write string values
// (RFC 8259 §7, invalid UTF-8 bytes as the characters \xHH), quotes included.
void append_json_string(std::string& out, std::string_view s);

}  // namespace flowsec::ipfix
