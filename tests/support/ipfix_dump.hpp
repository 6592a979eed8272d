// Test support (header-only, flowsec::test): what libfixbuf's ipfixDump (Debian
// libfixbuf-tools) reads from an IPFIX file — the independent peer that expected record
// counts, byte/packet sums and per-record values come from.
//
// ipfix_dump(file, dir) runs `ipfixDump -i FILE -s` (the "N Data Records" total and the
// per-template counts) and `ipfixDump -i FILE` (every record), each bounded to 30 s, and
// returns:
//  - data_records: ipfixDump's total; options_records: those of templates it printed as
//    "options template record" (scope > 0), i.e. not flows;
//  - octets / packets: sums of octetDeltaCount (IE 1) / packetDeltaCount (IE 2);
//  - records: every data record as IANA name → value text as printed ("192.0.2.1",
//    "2015-08-03 12:11:29.586" — always UTC — or a number), with its template id.
// nullopt if ipfixDump failed or printed no totals. Parsing is by hand, line by line
// (std::regex over a few MB of dump is slow under sanitizers).
#pragma once

#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/flowsec_process.hpp"

namespace flowsec::test {

struct IpfixDumpRecord {
  std::uint16_t template_id = 0;
  std::map<std::string, std::string> fields;  // first occurrence of each name
};

struct IpfixDump {
  std::uint64_t data_records = 0;
  std::uint64_t options_records = 0;
  std::uint64_t octets = 0;
  std::uint64_t packets = 0;
  std::vector<IpfixDumpRecord> records;
  [[nodiscard]] std::uint64_t flow_records() const { return data_records - options_records; }
  // As nfdump and JSON-lines outputs are compared: records (all data records), bytes, packets.
  [[nodiscard]] Totals totals() const {
    Totals t;
    t.records = data_records;
    t.bytes = octets;
    t.packets = packets;
    return t;
  }
};

// "2015-08-03 12:11:29.586" (UTC) → epoch milliseconds; nullopt if it is not that shape.
inline std::optional<std::uint64_t> ipfix_dump_time_ms(const std::string& text) {
  std::tm tm{};
  unsigned ms = 0;
  if (std::sscanf(text.c_str(), "%d-%d-%d %d:%d:%d.%3u", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t s = ::timegm(&tm);
  if (s < 0) return std::nullopt;
  return static_cast<std::uint64_t>(s) * 1000 + ms;
}

inline std::optional<IpfixDump> ipfix_dump(const std::string& file, const std::string& dir) {
  IpfixDump d;
  const auto stats = run_command({"ipfixDump", "-i", file, "-s"}, dir, std::chrono::seconds(30));
  if (stats.exit_code != 0) return std::nullopt;
  std::map<std::uint16_t, std::uint64_t> per_template;
  bool have_total = false;
  for (const auto& line : lines_of(stats.out)) {
    unsigned long long n = 0;
    unsigned tid = 0, hex = 0;
    if (std::sscanf(line.c_str(), "*** File Stats: %*u Messages, %llu Data Records", &n) == 1) {
      d.data_records = n;
      have_total = true;
    } else if (std::sscanf(line.c_str(), " %u (0x%x)| %llu", &tid, &hex, &n) == 3) {
      per_template[static_cast<std::uint16_t>(tid)] += n;
    }
  }
  if (!have_total) return std::nullopt;

  const auto dump = run_command({"ipfixDump", "-i", file}, dir, std::chrono::seconds(30));
  if (dump.exit_code != 0) return std::nullopt;
  std::set<std::uint16_t> options_templates;
  std::istringstream in(dump.out);
  enum class In { none, template_record, options_template_record, data_record } where = In::none;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("--- ", 0) == 0) {
      if (line.rfind("--- options template record", 0) == 0) {
        where = In::options_template_record;
      } else if (line.rfind("--- template record", 0) == 0) {
        where = In::template_record;
      } else if (line.rfind("--- data record", 0) == 0) {
        where = In::data_record;
        d.records.emplace_back();
      } else {
        where = In::none;
      }
      continue;
    }
    unsigned tid = 0;
    if (const auto at = line.find("tid:");
        at != std::string::npos && std::sscanf(line.c_str() + at, "tid: %u", &tid) == 1) {
      if (where == In::options_template_record) {
        options_templates.insert(static_cast<std::uint16_t>(tid));
      } else if (where == In::data_record) {
        d.records.back().template_id = static_cast<std::uint16_t>(tid);
      }
      continue;
    }
    if (where != In::data_record) continue;
    // "\t(1)                      octetDeltaCount : 194"
    const auto open = line.find('(');
    const auto close = line.find(')', open);
    const auto colon = line.find(" : ", close);
    if (open == std::string::npos || close == std::string::npos || colon == std::string::npos) {
      continue;
    }
    std::string name = line.substr(close + 1, colon - close - 1);
    if (const auto s = name.find("(S)"); s != std::string::npos) name.erase(s, 3);  // scope
    name.erase(0, name.find_first_not_of(" \t"));
    name.erase(name.find_last_not_of(" \t") + 1);
    const std::string value = line.substr(colon + 3);
    const std::string id = line.substr(open + 1, close - open - 1);
    if (id == "1") d.octets += std::stoull(value);
    if (id == "2") d.packets += std::stoull(value);
    d.records.back().fields.emplace(name, value);
  }
  for (const auto tid : options_templates) d.options_records += per_template[tid];
  return d;
}

}  // namespace flowsec::test
