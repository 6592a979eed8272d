#include "ipfix/ipfix_file.hpp"

#include <cerrno>
#include <vector>

namespace flowsec::ipfix {

namespace {

// Source templates remembered by address; beyond this the memo is dropped (layouts stay).
constexpr std::size_t kMaxSources = 8192;

std::size_t layout_hash(const Template& t) {
  std::size_t h = t.scope_count();
  for (const FieldSpec& f : t.fields()) {
    const std::uint64_t x =
        (std::uint64_t{f.enterprise} << 32) | (std::uint64_t{f.id} << 16) | f.length;
    h = (h ^ std::hash<std::uint64_t>{}(x)) * 0x100000001b3ull;
  }
  return h;
}

std::error_code last_errno(int fallback) {
  return {errno != 0 ? errno : fallback, std::system_category()};
}

}  // namespace

// ---- writer -----------------------------------------------------------------

IpfixFileWriter::IpfixFileWriter(std::FILE* out, std::size_t max_message_size)
    : out_(out), max_size_(max_message_size) {}

const Template* IpfixFileWriter::wire_template(const TemplatePtr& t) {
  if (auto it = layout_of_.find(t.get()); it != layout_of_.end()) {
    return layouts_[it->second].wire.get();
  }
  // A template object not seen before: same layout as one already in the file?
  const std::size_t hash = layout_hash(*t);
  std::size_t index = layouts_.size();
  for (auto [it, end] = by_hash_.equal_range(hash); it != end; ++it) {
    if (layouts_[it->second].wire->same_layout(*t)) {
      index = it->second;
      break;
    }
  }
  if (index == layouts_.size()) {
    if (ids_exhausted_) return nullptr;
    // RFC 7011 §3.4.1: data set ids 256..65535; fresh per file, whatever the source id was.
    auto made = Template::make(
        next_id_, std::vector<FieldSpec>(t->fields().begin(), t->fields().end()), t->scope_count());
    if (!made) return nullptr;  // cannot happen: the source template passed the same checks
    layouts_.push_back(Layout{std::move(*made)});
    by_hash_.emplace(hash, index);
    if (next_id_ == 65535) {
      ids_exhausted_ = true;
    } else {
      ++next_id_;
    }
  }
  if (sources_.size() >= kMaxSources) {
    layout_of_.clear();
    sources_.clear();
  }
  layout_of_.emplace(t.get(), index);
  sources_.push_back(t);
  return layouts_[index].wire.get();
}

IpfixFileWriter::Domain& IpfixFileWriter::domain(std::uint32_t id) {
  auto& slot = domains_[id];
  if (!slot) slot = std::make_unique<Domain>(id, max_size_);
  return *slot;
}

Expected<void, std::error_code> IpfixFileWriter::put(Bytes bytes) {
  if (bytes.empty()) return {};
  errno = 0;
  if (std::fwrite(bytes.data(), 1, bytes.size(), out_) != bytes.size()) {
    return unexpected(last_errno(EIO));
  }
  stats_.bytes += bytes.size();
  return {};
}

Expected<void, std::error_code> IpfixFileWriter::flush_message() {
  Domain* d = open_;
  open_ = nullptr;
  if (d == nullptr || d->builder.empty()) return {};
  const std::uint32_t records = d->builder.data_records();
  const std::vector<std::byte> msg = d->builder.finish();
  // RFC 7011 §3.1: the next message's sequence number counts the data records before it.
  d->sequence += records;
  ++stats_.messages;
  stats_.records += records;
  return put(msg);
}

Expected<void, std::error_code> IpfixFileWriter::write(const RecordBatch& batch) {
  const auto templates = batch.templates();
  // Per batch: source template index → file template, resolved once.
  std::vector<const Template*> wire(templates.size(), nullptr);
  for (std::size_t i = 0; i < templates.size(); ++i) wire[i] = wire_template(templates[i]);

  std::size_t last = 0;
  // Records of one message are consecutive and share its MessageMeta: the domain and
  // whether the current template was announced in it are looked up once per run.
  const MessageMeta* meta_seen = nullptr;
  Domain* d = nullptr;
  const Template* announced_in_d = nullptr;
  for (std::size_t ri = 0; ri < batch.size(); ++ri) {
    const RecordView rec = batch[ri];
    const Template* src = &rec.record_template();
    if (last >= templates.size() || templates[last].get() != src) {
      last = 0;
      while (last < templates.size() && templates[last].get() != src) ++last;
    }
    const Template* t = last < templates.size() ? wire[last] : nullptr;
    if (t == nullptr) {
      ++stats_.records_dropped;
      continue;
    }
    const MessageMeta& meta = rec.message();
    if (&meta != meta_seen) {
      meta_seen = &meta;
      Domain* next = &domain(meta.observation_domain);
      if (next != d) announced_in_d = nullptr;
      d = next;
    }
    if (open_ != nullptr && (open_ != d || open_export_time_ != meta.export_time)) {
      if (auto r = flush_message(); !r) return r;
    }
    auto open = [&] {
      d->builder.begin(meta.export_time, d->sequence);
      open_ = d;
      open_export_time_ = meta.export_time;
    };
    if (open_ == nullptr) open();

    // RFC 5655 §8: the template goes before its first record, in the record's domain.
    if (t != announced_in_d) {
      const std::uint64_t key = (std::uint64_t{meta.observation_domain} << 16) | t->id();
      if (!announced_.contains(key)) {
        if (!d->builder.add_template(*t)) {
          if (auto r = flush_message(); !r) return r;
          open();
          if (!d->builder.add_template(*t)) {  // larger than an empty message
            ++stats_.records_dropped;
            continue;
          }
        }
        announced_.insert(key);
        ++stats_.templates;
      }
      announced_in_d = t;
    }
    if (!d->builder.add_record(*t, rec.bytes())) {
      if (auto r = flush_message(); !r) return r;
      open();
      if (!d->builder.add_record(*t, rec.bytes())) ++stats_.records_dropped;
    }
  }
  return {};
}

Expected<void, std::error_code> IpfixFileWriter::finish() {
  if (auto r = flush_message(); !r) return r;
  errno = 0;
  if (std::fflush(out_) != 0) return unexpected(last_errno(EIO));
  return {};
}

// ---- reader -----------------------------------------------------------------

std::string FileReadError::message() const {
  std::string s;
  if (kind == Kind::io) {
    s = "read error: " + io.message();
  } else {
    s = "not a valid IPFIX file: ";
    s += describe(framing.code);
  }
  s += " at offset " + std::to_string(offset);
  return s;
}

IpfixFileReader::IpfixFileReader(std::FILE* in)
    : in_(in), store_(TransportKind::file), chunk_(kChunkSize) {}

Expected<bool, FileReadError> IpfixFileReader::read(RecordBatch& out) {
  if (done_) return false;
  errno = 0;
  const std::size_t n = std::fread(chunk_.data(), 1, chunk_.size(), in_);
  if (n < chunk_.size() && std::ferror(in_) != 0) {
    return unexpected(
        FileReadError{FileReadError::Kind::io, last_errno(EIO), {}, framer_.stream_offset()});
  }
  stats_.bytes += n;
  auto fed = framer_.feed(Bytes(chunk_.data(), n), [&](Bytes message) {
    ++stats_.messages;
    const RecordBatch::Mark mark = out.mark();
    auto r = decode_ipfix(message, store_, out);
    if (!r) {
      // All or nothing (decode.hpp): the batch is as before this message.
      ++stats_.messages_dropped;
      stats_.last_decode_error = r.error();
      stats_.last_decode_error_offset = framer_.stream_offset();
      return;
    }
    uptime_.apply(out, mark);
    stats_.templates += r->templates;
    stats_.data_records += r->data_records;
    stats_.unknown_template_sets += r->unknown_template_sets;
  });
  if (!fed) {
    return unexpected(
        FileReadError{FileReadError::Kind::framing, {}, fed.error(), framer_.stream_offset()});
  }
  if (n < chunk_.size()) {  // end of file
    done_ = true;
    if (auto fin = framer_.finish(); !fin) {
      return unexpected(
          FileReadError{FileReadError::Kind::framing, {}, fin.error(), framer_.stream_offset()});
    }
    return false;
  }
  return true;
}

Expected<FileReaderStats, FileReadError> read_ipfix_file(
    const std::string& path, const std::function<void(RecordBatch&)>& on_batch) {
  errno = 0;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return unexpected(FileReadError{FileReadError::Kind::io, last_errno(ENOENT), {}, 0});
  IpfixFileReader reader(f.get());
  RecordBatch batch;
  for (;;) {
    auto more = reader.read(batch);
    if (!more) return unexpected(more.error());
    if (!batch.empty()) on_batch(batch);
    batch.clear();
    if (!*more) break;
  }
  return reader.stats();
}

}  // namespace flowsec::ipfix
