#include "ipfix/render.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ipfix/ie_registry.hpp"
#include "ipfix/value.hpp"

namespace flowsec::ipfix {

namespace {

constexpr char kHex[] = "0123456789abcdef";

// JSON lines and ntopng's JSON share every value rule; only the keys differ.
constexpr bool is_json(RenderFormat f) {
  return f == RenderFormat::json_lines || f == RenderFormat::ntopng_json;
}
// Plans cached per renderer; beyond this the cache is dropped and rebuilt.
constexpr std::size_t kMaxCachedPlans = 1024;

std::atomic<std::uint64_t> g_next_plan_id{1};

enum class Kind : std::uint8_t {
  skip,
  unsigned_int,
  signed_int,
  floating,
  boolean,
  mac,
  ipv4,
  ipv6,
  string,
  hex,
  dt_seconds,
  dt_millis,
  dt_micros,
  dt_nanos,
  sys_uptime,
};

Kind kind_for(std::uint32_t enterprise, std::uint16_t id) {
  if (enterprise == kIanaPen && id == 210) return Kind::skip;  // paddingOctets
  switch (element_type(enterprise, id)) {
    case DataType::unsigned8:
    case DataType::unsigned16:
    case DataType::unsigned32:
    case DataType::unsigned64:
      // flowEndSysUpTime / flowStartSysUpTime (LAST_SWITCHED / FIRST_SWITCHED)
      if (enterprise == kIanaPen && (id == 21 || id == 22)) return Kind::sys_uptime;
      return Kind::unsigned_int;
    case DataType::signed8:
    case DataType::signed16:
    case DataType::signed32:
    case DataType::signed64:
      return Kind::signed_int;
    case DataType::float32:
    case DataType::float64:
      return Kind::floating;
    case DataType::boolean:
      return Kind::boolean;
    case DataType::macAddress:
      return Kind::mac;
    case DataType::ipv4Address:
      return Kind::ipv4;
    case DataType::ipv6Address:
      return Kind::ipv6;
    case DataType::string:
      return Kind::string;
    case DataType::dateTimeSeconds:
      return Kind::dt_seconds;
    case DataType::dateTimeMilliseconds:
      return Kind::dt_millis;
    case DataType::dateTimeMicroseconds:
      return Kind::dt_micros;
    case DataType::dateTimeNanoseconds:
      return Kind::dt_nanos;
    case DataType::octetArray:
    case DataType::basicList:
    case DataType::subTemplateList:
    case DataType::subTemplateMultiList:
      return Kind::hex;
  }
  return Kind::hex;
}

// ---- small appenders -------------------------------------------------------

template <class Int>
void append_int(std::string& out, Int v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_hex(std::string& out, Bytes b) {
  const std::size_t at = out.size();
  out.resize(at + 2 * b.size());
  char* p = out.data() + at;
  for (std::byte x : b) {
    const auto c = static_cast<std::uint8_t>(x);
    *p++ = kHex[c >> 4];
    *p++ = kHex[c & 15];
  }
}

void append_hex_byte_escape(std::string& out, std::uint8_t c) {
  const char esc[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
  out.append(esc, 4);
}

void append_ipv4(std::string& out, const std::byte* p) {
  char buf[16];
  std::size_t n = 0;
  for (int i = 0; i < 4; ++i) {
    if (i > 0) buf[n++] = '.';
    const auto c = static_cast<std::uint8_t>(p[i]);
    if (c >= 100) buf[n++] = static_cast<char>('0' + c / 100);
    if (c >= 10) buf[n++] = static_cast<char>('0' + c / 10 % 10);
    buf[n++] = static_cast<char>('0' + c % 10);
  }
  out.append(buf, n);
}

void append_ipv6(std::string& out, const std::byte* p) {
  char buf[INET6_ADDRSTRLEN];
  // glibc's inet_ntop follows RFC 5952 (longest zero run compressed, lowercase).
  if (inet_ntop(AF_INET6, p, buf, sizeof buf) != nullptr) out.append(buf);
}

void append_mac(std::string& out, const std::byte* p) {
  char buf[17];
  for (int i = 0; i < 6; ++i) {
    const auto c = static_cast<std::uint8_t>(p[i]);
    buf[i * 3] = kHex[c >> 4];
    buf[i * 3 + 1] = kHex[c & 15];
    if (i < 5) buf[i * 3 + 2] = ':';
  }
  out.append(buf, 17);
}

// Length of the valid UTF-8 sequence starting at p (RFC 3629 §4), 0 if invalid.
std::size_t utf8_sequence(const std::uint8_t* p, std::size_t n) {
  const std::uint8_t c = p[0];
  if (c < 0x80) return 1;
  std::size_t len = 0;
  std::uint8_t lo = 0x80;
  std::uint8_t hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;  // overlong
    if (c == 0xed) hi = 0x9f;  // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;  // overlong
    if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (n < len) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (std::size_t i = 2; i < len; ++i) {
    if (p[i] < 0x80 || p[i] > 0xbf) return 0;
  }
  return len;
}

// String bytes without the NUL padding of fixed-length fields.
Bytes trim_nuls(Bytes b) {
  std::size_t n = b.size();
  while (n > 0 && b[n - 1] == std::byte{0}) --n;
  return b.first(n);
}

// The backslash escapes JSON (RFC 8259 §7) and quoted text values share; false for
// any other byte.
bool append_common_escape(std::string& out, std::uint8_t c) {
  switch (c) {
    case '"':
      out.append("\\\"", 2);
      return true;
    case '\\':
      out.append("\\\\", 2);
      return true;
    case '\n':
      out.append("\\n", 2);
      return true;
    case '\r':
      out.append("\\r", 2);
      return true;
    case '\t':
      out.append("\\t", 2);
      return true;
    default:
      return false;
  }
}

// RFC 8259 §7.
void append_json_string(std::string& out, Bytes b) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
  const std::size_t n = b.size();
  out.push_back('"');
  std::size_t run = 0;  // start of bytes not yet copied
  std::size_t i = 0;
  auto flush = [&] { out.append(reinterpret_cast<const char*>(p + run), i - run); };
  while (i < n) {
    const std::uint8_t c = p[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const std::size_t len = utf8_sequence(p + i, n - i);
      if (len > 0) {
        i += len;
        continue;
      }
      flush();
      out.append("\\\\x", 3);  // the characters \xHH
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
      run = ++i;
      continue;
    }
    flush();
    if (append_common_escape(out, c)) {
      run = ++i;
      continue;
    }
    switch (c) {
      case '\b':
        out.append("\\b", 2);
        break;
      case '\f':
        out.append("\\f", 2);
        break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out.append(esc, 6);
      }
    }
    run = ++i;
  }
  flush();
  out.push_back('"');
}

// logfmt-style value: bare when it is plain, else quoted with escapes.
void append_text_string(std::string& out, Bytes b) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
  const std::size_t n = b.size();
  bool plain = n > 0;
  for (std::size_t i = 0; i < n && plain;) {
    const std::uint8_t c = p[i];
    if (c < 0x80) {
      plain = c > 0x20 && c < 0x7f && c != '=' && c != '"' && c != '\\';
      ++i;
    } else {
      const std::size_t len = utf8_sequence(p + i, n - i);
      plain = len > 0;
      i += len;
    }
  }
  if (plain) {
    out.append(reinterpret_cast<const char*>(p), n);
    return;
  }
  out.push_back('"');
  for (std::size_t i = 0; i < n;) {
    const std::uint8_t c = p[i];
    if (c >= 0x80) {
      const std::size_t len = utf8_sequence(p + i, n - i);
      if (len > 0) {
        out.append(reinterpret_cast<const char*>(p + i), len);
        i += len;
      } else {
        append_hex_byte_escape(out, c);
        ++i;
      }
      continue;
    }
    if (append_common_escape(out, c)) {
      ++i;
      continue;
    }
    if (c < 0x20 || c == 0x7f) {
      append_hex_byte_escape(out, c);
    } else {
      out.push_back(static_cast<char>(c));
    }
    ++i;
  }
  out.push_back('"');
}

// RFC 4180 §2: quote when the field holds a comma, a quote, CR or LF; double quotes.
void append_csv_string(std::string& out, Bytes b) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
  const std::size_t n = b.size();
  bool quote = false;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t c = p[i];
    if (c == ',' || c == '"' || c == '\r' || c == '\n') {
      quote = true;
      break;
    }
  }
  if (quote) out.push_back('"');
  for (std::size_t i = 0; i < n;) {
    const std::uint8_t c = p[i];
    if (c >= 0x80) {
      const std::size_t len = utf8_sequence(p + i, n - i);
      if (len > 0) {
        out.append(reinterpret_cast<const char*>(p + i), len);
        i += len;
      } else {
        append_hex_byte_escape(out, c);
        ++i;
      }
      continue;
    }
    if (c == '"') {
      out.append("\"\"", 2);
    } else if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f) {
      append_hex_byte_escape(out, c);
    } else {
      out.push_back(static_cast<char>(c));
    }
    ++i;
  }
  if (quote) out.push_back('"');
}

void append_string(RenderFormat f, std::string& out, Bytes b) {
  switch (f) {
    case RenderFormat::json_lines:
    case RenderFormat::ntopng_json:
      append_json_string(out, b);
      break;
    case RenderFormat::text:
      append_text_string(out, b);
      break;
    case RenderFormat::csv:
      append_csv_string(out, b);
      break;
  }
}

// Values that are strings in JSON but never need escaping (hex, addresses).
template <class Fn>
void append_quoted_in_json(RenderFormat f, std::string& out, Fn&& fn) {
  if (is_json(f)) out.push_back('"');
  fn();
  if (is_json(f)) out.push_back('"');
}

void append_double(RenderFormat f, std::string& out, double d) {
  if (std::isnan(d)) {
    out.append(is_json(f) ? "null" : "nan");
  } else if (std::isinf(d)) {
    out.append(is_json(f) ? "null" : (d > 0 ? "inf" : "-inf"));
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, d);
    out.append(buf, r.ptr);
  }
}

void append_float(RenderFormat f, std::string& out, float v) {
  if (!std::isfinite(v)) {
    append_double(f, out, static_cast<double>(v));
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest form of the float itself
  out.append(buf, r.ptr);
}

// Reference for flowStart/EndSysUpTime conversion, worked out once per record.
struct UptimeRef {
  enum class Mode : std::uint8_t { unknown, raw, sysinit, header };
  Mode mode = Mode::unknown;
  std::uint64_t sysinit_ms = 0;
};

std::int64_t uptime_to_epoch_seconds(const UptimeRef& ref, const MessageMeta& m,
                                     std::uint64_t value) {
  if (ref.mode == UptimeRef::Mode::sysinit) {
    return static_cast<std::int64_t>((ref.sysinit_ms + value) / 1000);
  }
  // Modulo 2^32 as a signed difference: survives the uptime wrap and small skew.
  const auto diff = static_cast<std::int32_t>(m.sys_uptime_ms - static_cast<std::uint32_t>(value));
  // The flow's time in milliseconds, as the header dates it (RFC 3954 §5.1: the export
  // time in seconds, plus v5's residual nanoseconds; uptime_converter.cpp and nfdump date
  // it alike), then its whole second: `export_time - diff / 1000` truncated the
  // difference, which put a time up to a second after the one the milliseconds say.
  const std::int64_t ms = std::int64_t{m.export_time} * 1000 +
                          std::int64_t{m.export_time_nsec / 1'000'000} - std::int64_t{diff};
  return ms >= 0 ? ms / 1000 : -((999 - ms) / 1000);
}

}  // namespace

// ---- per-template plan ------------------------------------------------------

struct RecordRenderer::Plan {
  struct Column {
    Kind kind = Kind::hex;
    std::string key;  // format-specific prefix: "\"NAME\":" (JSON), "NAME=" (text), "" (CSV)
  };
  TemplatePtr tmpl;  // keeps the template (and so its address) alive while cached
  std::uint64_t id = 0;
  std::vector<Column> columns;  // one per template field
  bool has_uptime = false;
  bool has_sysinit = false;
  // The template already carries a field rendered under this name.
  bool own_v4 = false;
  bool own_v6 = false;
  bool own_tls = false;
  std::string csv_header;  // column names of the fields, comma separated
};

struct RecordRenderer::Impl {
  std::unordered_map<const Template*, std::unique_ptr<Plan>> plans;
  std::vector<const Template*> batch_keys;  // batch.templates() addresses
  std::vector<const Plan*> batch_plans;
  // Exporter columns for the current batch, pre-rendered.
  std::string exp_addr_key;  // EXPORTER_IPV4_ADDRESS or EXPORTER_IPV6_ADDRESS
  std::string exp_addr;      // rendered value (JSON: quoted), empty = absent
  std::string exp_tls;       // rendered value, empty = absent
  bool exp_v6 = false;
  std::string scratch;
  std::string record;  // render_each(): the current record's text
};

namespace {

constexpr std::string_view kExpV4 = "EXPORTER_IPV4_ADDRESS";
constexpr std::string_view kExpV6 = "EXPORTER_IPV6_ADDRESS";
constexpr std::string_view kExpTls = "EXPORTER_TLS_IDENTITY";
// ntopng's keys for the exporter address: the v9 types of exporterIPv4Address (130) and
// exporterIPv6Address (131).
constexpr std::string_view kNtopExpV4 = "130";
constexpr std::string_view kNtopExpV6 = "131";

// ntopng's key for an element: its NetFlow v9 field type in decimal (RFC 3954 §8: types
// below 32768 are the IANA ids; ntop's enterprise-35632 elements are 57472 + id, as nProbe
// exports them; high v9 types we received come back as they were), else `name`.
std::string ntopng_key(std::uint32_t enterprise, std::uint16_t id, const std::string& name) {
  std::uint32_t type = 0;
  if (const ElementInfo* e = find_element(enterprise, id); e != nullptr && e->v9_type != 0) {
    type = e->v9_type;
  } else if (enterprise == kIanaPen && id < 0x8000) {
    type = id;
  } else if (enterprise == kNtopPen && id <= 0xffff - kNtopV9Base) {
    type = kNtopV9Base + id;
  } else if (enterprise == kV9HighTypePen && id < 0x8000) {
    type = 0x8000u | id;
  }
  return type != 0 ? std::to_string(type) : name;
}

}  // namespace

RecordRenderer::RecordRenderer(RenderFormat format)
    : format_(format), impl_(std::make_unique<Impl>()) {}
RecordRenderer::~RecordRenderer() = default;
RecordRenderer::RecordRenderer(RecordRenderer&&) noexcept = default;
RecordRenderer& RecordRenderer::operator=(RecordRenderer&&) noexcept = default;

void RecordRenderer::render(const RecordBatch& batch, std::string& out) {
  render_records(batch, out, csv_, nullptr);
}

void RecordRenderer::render(const RecordBatch& batch, std::string& out, CsvState& csv) {
  render_records(batch, out, csv, nullptr);
}

void RecordRenderer::render_each(const RecordBatch& batch, const RecordCallback& each) {
  std::string unused;
  render_records(batch, unused, csv_, &each);
}

void RecordRenderer::render_records(const RecordBatch& batch, std::string& dest, CsvState& csv,
                                    const RecordCallback* each) {
  Impl& im = *impl_;
  // Per record: appended to `dest` with a line end, or rendered alone for `each`.
  std::string& out = each != nullptr ? im.record : dest;
  const RenderFormat f = format_;

  // Resolve a plan for every template of the batch, building the missing ones.
  const auto templates = batch.templates();
  if (im.plans.size() + templates.size() > kMaxCachedPlans) im.plans.clear();
  im.batch_keys.clear();
  im.batch_plans.clear();
  for (const TemplatePtr& t : templates) {
    auto& slot = im.plans[t.get()];
    if (!slot) {
      auto p = std::make_unique<Plan>();
      p->tmpl = t;
      p->id = g_next_plan_id.fetch_add(1, std::memory_order_relaxed);
      const auto fields = t->fields();
      p->columns.resize(fields.size());
      std::vector<std::string> names;
      names.reserve(fields.size());
      for (std::size_t i = 0; i < fields.size(); ++i) {
        const FieldSpec& fs = fields[i];
        Plan::Column& c = p->columns[i];
        c.kind = kind_for(fs.enterprise, fs.id);
        if (fs.enterprise == kIanaPen && fs.id == 160) p->has_sysinit = true;
        if (c.kind == Kind::sys_uptime) p->has_uptime = true;
        if (c.kind == Kind::skip) continue;
        const std::string name = output_name(fs.enterprise, fs.id);
        if (name == kExpV4) p->own_v4 = true;
        if (name == kExpV6) p->own_v6 = true;
        if (name == kExpTls) p->own_tls = true;
        const std::string key =
            f == RenderFormat::ntopng_json ? ntopng_key(fs.enterprise, fs.id, name) : name;
        // Unique keys: a second occurrence becomes KEY_2, and so on.
        std::string unique = key;
        for (int k = 2; std::find(names.begin(), names.end(), unique) != names.end(); ++k) {
          unique = key + "_" + std::to_string(k);
        }
        names.push_back(unique);
        switch (f) {
          case RenderFormat::json_lines:
          case RenderFormat::ntopng_json:
            append_json_string(c.key, as_bytes(unique));
            c.key.push_back(':');
            break;
          case RenderFormat::text:
            c.key = unique + "=";
            break;
          case RenderFormat::csv:
            if (!p->csv_header.empty()) p->csv_header.push_back(',');
            append_csv_string(p->csv_header, as_bytes(unique));
            break;
        }
      }
      slot = std::move(p);
    }
    im.batch_keys.push_back(t.get());
    im.batch_plans.push_back(slot.get());
  }

  // Exporter columns, once per batch (SPEC §6).
  const Exporter& ex = batch.exporter;
  im.exp_addr.clear();
  im.exp_tls.clear();
  im.exp_v6 = ex.address.is_v6();
  if (!ex.address.is_unspecified()) {
    std::array<std::byte, 16> raw{};
    const auto ab = ex.address.bytes();
    std::memcpy(raw.data(), ab.data(), ab.size());
    append_quoted_in_json(f, im.exp_addr, [&] {
      if (im.exp_v6) {
        append_ipv6(im.exp_addr, raw.data());
      } else {
        append_ipv4(im.exp_addr, raw.data());
      }
    });
  }
  if (!ex.tls_identity.empty()) append_string(f, im.exp_tls, as_bytes(ex.tls_identity));
  const std::string_view addr_key = f == RenderFormat::ntopng_json
                                        ? (im.exp_v6 ? kNtopExpV6 : kNtopExpV4)
                                        : (im.exp_v6 ? kExpV6 : kExpV4);

  std::size_t last = 0;
  for (std::size_t ri = 0; ri < batch.size(); ++ri) {
    const RecordView rec = batch[ri];
    const Template* tp = &rec.record_template();
    if (last >= im.batch_keys.size() || im.batch_keys[last] != tp) {
      last = 0;
      while (last < im.batch_keys.size() && im.batch_keys[last] != tp) ++last;
      if (last == im.batch_keys.size()) continue;  // cannot happen: records use batch templates
    }
    const Plan& plan = *im.batch_plans[last];
    const MessageMeta& meta = rec.message();
    const bool add_addr = !im.exp_addr.empty() && !(im.exp_v6 ? plan.own_v6 : plan.own_v4);
    const bool add_tls = !im.exp_tls.empty() && !plan.own_tls;
    if (each != nullptr) out.clear();

    if (f == RenderFormat::csv) {
      const std::uint64_t key =
          (plan.id << 3) | (add_addr ? 1u : 0u) | (im.exp_v6 ? 2u : 0u) | (add_tls ? 4u : 0u);
      if (key != csv.last_key) {
        std::string& h = im.scratch;
        h = plan.csv_header;
        if (add_addr) {
          if (!h.empty()) h.push_back(',');
          h.append(addr_key);
        }
        if (add_tls) {
          if (!h.empty()) h.push_back(',');
          h.append(kExpTls);
        }
        if (h != csv.last_header) {
          out.append(h);
          out.push_back('\n');
          csv.last_header = h;
        }
        csv.last_key = key;
      }
    }

    UptimeRef uptime;
    if (plan.has_uptime) {
      if (plan.has_sysinit) {
        if (auto v = rec.unsigned_field(kIanaPen, 160)) {
          uptime.mode = UptimeRef::Mode::sysinit;
          uptime.sysinit_ms = *v;
        }
      }
      if (uptime.mode == UptimeRef::Mode::unknown) {
        uptime.mode = (meta.export_time != 0 && has_sys_uptime(meta)) ? UptimeRef::Mode::header
                                                                      : UptimeRef::Mode::raw;
      }
    }

    if (is_json(f)) out.push_back('{');
    bool first = true;
    std::size_t fi = 0;
    rec.for_each_field([&](const FieldValue& fv) {
      const Plan::Column& c = plan.columns[fi++];
      if (c.kind == Kind::skip) return;
      if (!first) out.push_back(f == RenderFormat::text ? ' ' : ',');
      first = false;
      out.append(c.key);
      const Bytes v = fv.value;
      const std::size_t n = v.size();
      switch (c.kind) {
        case Kind::unsigned_int:
          if (n >= 1 && n <= 8) return append_int(out, load_be_var(v));
          break;
        case Kind::sys_uptime:
          if (n >= 1 && n <= 8) {
            const std::uint64_t raw = load_be_var(v);
            if (uptime.mode == UptimeRef::Mode::raw) return append_int(out, raw);
            return append_int(out, uptime_to_epoch_seconds(uptime, meta, raw));
          }
          break;
        case Kind::signed_int:
          if (n >= 1 && n <= 8) return append_int(out, wire::load_signed(v));
          break;
        case Kind::floating:
          if (n == 4) {
            return append_float(f, out, std::bit_cast<float>(load_be<std::uint32_t>(v.data())));
          }
          if (n == 8) {
            return append_double(f, out, std::bit_cast<double>(load_be<std::uint64_t>(v.data())));
          }
          break;
        case Kind::boolean:
          // RFC 7011 §6.1.5: 1 = true, 2 = false; anything else falls through to hex.
          if (n == 1 && v[0] == std::byte{1}) return static_cast<void>(out.append("true"));
          if (n == 1 && v[0] == std::byte{2}) return static_cast<void>(out.append("false"));
          break;
        case Kind::mac:
          if (n == 6) return append_quoted_in_json(f, out, [&] { append_mac(out, v.data()); });
          break;
        case Kind::ipv4:
          if (n == 4) return append_quoted_in_json(f, out, [&] { append_ipv4(out, v.data()); });
          break;
        case Kind::ipv6:
          if (n == 16) return append_quoted_in_json(f, out, [&] { append_ipv6(out, v.data()); });
          break;
        case Kind::string:
          return append_string(f, out, trim_nuls(v));
        case Kind::dt_seconds:
          if (n == 4) return append_int(out, load_be<std::uint32_t>(v.data()));
          break;
        case Kind::dt_millis:
          if (n == 8) return append_int(out, load_be<std::uint64_t>(v.data()));
          break;
        case Kind::dt_micros:
          if (n == 8)
            return append_int(out, wire::ntp_to_unix_us(load_be<std::uint64_t>(v.data())));
          break;
        case Kind::dt_nanos:
          if (n == 8)
            return append_int(out, wire::ntp_to_unix_ns(load_be<std::uint64_t>(v.data())));
          break;
        case Kind::hex:
        case Kind::skip:
          break;
      }
      // octetArray, lists, unknown elements and values of impossible length: hex.
      append_quoted_in_json(f, out, [&] { append_hex(out, v); });
    });
    if (add_addr) {
      if (!first) out.push_back(f == RenderFormat::text ? ' ' : ',');
      first = false;
      switch (f) {
        case RenderFormat::json_lines:
        case RenderFormat::ntopng_json:
          out.push_back('"');
          out.append(addr_key);
          out.append("\":", 2);
          break;
        case RenderFormat::text:
          out.append(addr_key);
          out.push_back('=');
          break;
        case RenderFormat::csv:
          break;
      }
      out.append(im.exp_addr);
    }
    if (add_tls) {
      if (!first) out.push_back(f == RenderFormat::text ? ' ' : ',');
      first = false;
      switch (f) {
        case RenderFormat::json_lines:
        case RenderFormat::ntopng_json:
          out.push_back('"');
          out.append(kExpTls);
          out.append("\":", 2);
          break;
        case RenderFormat::text:
          out.append(kExpTls);
          out.push_back('=');
          break;
        case RenderFormat::csv:
          break;
      }
      out.append(im.exp_tls);
    }
    if (is_json(f)) out.push_back('}');
    if (each != nullptr) {
      (*each)(std::string_view(out));
    } else {
      out.push_back('\n');
    }
  }
}

void append_json_string(std::string& out, std::string_view s) {
  append_json_string(out, as_bytes(s));  // the Bytes overload above
}

void render_text(const RecordBatch& batch, std::string& out) {
  RecordRenderer(RenderFormat::text).render(batch, out);
}

void render_json_lines(const RecordBatch& batch, std::string& out) {
  RecordRenderer(RenderFormat::json_lines).render(batch, out);
}

void render_csv(const RecordBatch& batch, std::string& out, CsvState& state) {
  RecordRenderer(RenderFormat::csv).render(batch, out, state);
}

}  // namespace flowsec::ipfix
