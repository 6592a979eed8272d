#include "sinks/uptime_converter.hpp"

#include <utility>

#include "common/bytes.hpp"

namespace flowsec::sinks {

namespace {

constexpr std::uint16_t kFlowEndSysUpTime = 21;
constexpr std::uint16_t kFlowStartSysUpTime = 22;
constexpr std::uint16_t kFlowStartMilliseconds = 152;
constexpr std::uint16_t kFlowEndMilliseconds = 153;
constexpr std::uint16_t kSystemInitTimeMilliseconds = 160;

bool is_uptime(const ipfix::FieldSpec& f) {
  return f.enterprise == 0 && (f.id == kFlowStartSysUpTime || f.id == kFlowEndSysUpTime) &&
         f.length >= 1 && f.length <= 8;
}

void put_prefix(std::vector<std::byte>& out, std::size_t len) {
  // RFC 7011 §7: 1-byte length, or 255 then a 2-byte length.
  if (len < 255) {
    out.push_back(static_cast<std::byte>(len));
    return;
  }
  out.push_back(std::byte{255});
  out.push_back(static_cast<std::byte>(len >> 8));
  out.push_back(static_cast<std::byte>(len & 0xff));
}

}  // namespace

const std::shared_ptr<const UptimeConverter::Entry>& UptimeConverter::entry(
    const ipfix::TemplatePtr& t) {
  if (auto it = cache_.find(t.get()); it != cache_.end()) return it->second;
  if (cache_.size() >= kMaxCachedTemplates) cache_.clear();
  Entry e;
  e.source = t;
  const auto fields = t->fields();
  std::vector<ipfix::FieldSpec> derived(fields.begin(), fields.end());
  e.convert.assign(fields.size(), 0);
  bool any = false;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (!is_uptime(fields[i])) continue;
    any = true;
    e.convert[i] = 1;
    derived[i] = ipfix::FieldSpec{
        0, fields[i].id == kFlowStartSysUpTime ? kFlowStartMilliseconds : kFlowEndMilliseconds, 8};
  }
  if (any) {
    // Same id as the source: the file writer gives every layout its own file-local id anyway.
    if (auto made = ipfix::Template::make(t->id(), std::move(derived), t->scope_count())) {
      e.derived = std::move(*made);
    }
  }
  return cache_.emplace(t.get(), std::make_shared<const Entry>(std::move(e))).first->second;
}

const ipfix::RecordBatch& UptimeConverter::convert(const ipfix::RecordBatch& in) {
  const auto templates = in.templates();
  // Copies, not pointers into the cache: entry() may clear it while this loop runs.
  resolved_.clear();
  bool needed = false;
  for (const auto& t : templates) {
    resolved_.push_back(entry(t));
    if (resolved_.back()->derived) needed = true;
  }
  if (!needed) return in;

  out_.clear();
  out_.exporter = in.exporter;
  auto& data = out_.storage();
  const ipfix::MessageMeta* last_meta = nullptr;
  std::uint32_t last_message = 0;
  std::size_t ti = 0;
  for (std::size_t ri = 0; ri < in.size(); ++ri) {
    const ipfix::RecordView rec = in[ri];
    const ipfix::MessageMeta& meta = rec.message();
    if (&meta != last_meta) {
      last_meta = &meta;
      last_message = out_.add_message(meta);
    }
    const ipfix::Template* src = &rec.record_template();
    if (ti >= templates.size() || templates[ti].get() != src) {
      ti = 0;
      while (ti < templates.size() && templates[ti].get() != src) ++ti;
    }
    if (ti >= templates.size()) continue;  // cannot happen: a record's template is in its batch
    const Entry* e = resolved_[ti].get();

    // The reference for this record, worked out as render.hpp does.
    enum class Mode : std::uint8_t { raw, sysinit, header };
    Mode mode = Mode::raw;
    std::uint64_t sysinit_ms = 0;
    if (e->derived) {
      if (auto v = rec.unsigned_field(0, kSystemInitTimeMilliseconds)) {
        mode = Mode::sysinit;
        sysinit_ms = *v;
      } else if (meta.export_time != 0 && ipfix::has_sys_uptime(meta)) {
        mode = Mode::header;
      }
    }
    const auto offset = static_cast<std::uint32_t>(data.size());
    if (mode == Mode::raw) {
      const Bytes b = rec.bytes();
      data.insert(data.end(), b.begin(), b.end());
      out_.add(offset, static_cast<std::uint16_t>(b.size()), out_.use_template(e->source),
               last_message);
      continue;
    }
    const std::int64_t base_ms = static_cast<std::int64_t>(meta.export_time) * 1000 +
                                 static_cast<std::int64_t>(meta.export_time_nsec / 1000000);
    std::size_t fi = 0;
    rec.for_each_field([&](const ipfix::FieldValue& fv) {
      const std::size_t i = fi++;
      if (e->convert[i] != 0) {
        const std::uint64_t raw = load_be_var(fv.value);
        std::int64_t ms = 0;
        if (mode == Mode::sysinit) {
          ms = static_cast<std::int64_t>(sysinit_ms + raw);
        } else {
          const auto diff =
              static_cast<std::int32_t>(meta.sys_uptime_ms - static_cast<std::uint32_t>(raw));
          ms = base_ms - diff;
        }
        const std::size_t at = data.size();
        data.resize(at + 8);
        store_be<std::uint64_t>(data.data() + at, static_cast<std::uint64_t>(ms));
        return;
      }
      if (fv.spec->is_variable()) put_prefix(data, fv.value.size());
      data.insert(data.end(), fv.value.begin(), fv.value.end());
    });
    const std::size_t len = data.size() - offset;
    if (len > 0xffff) {  // cannot happen for a valid record: it grew by at most 7 bytes a field
      data.resize(offset);
      continue;
    }
    out_.add(offset, static_cast<std::uint16_t>(len), out_.use_template(e->derived), last_message);
    ++converted_;
  }
  return out_;
}

}  // namespace flowsec::sinks
