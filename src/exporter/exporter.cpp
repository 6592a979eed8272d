#include "exporter/exporter.hpp"

#include <algorithm>
#include <asio/post.hpp>
#include <charconv>
#include <utility>

#include "exporter/field_codec.hpp"
#include "ipfix/ie_registry.hpp"
#include "ipfix/limits.hpp"
#include "ipfix/value.hpp"

namespace flowsec::exporter {
namespace {

constexpr std::string_view kComponent = "exporter";
constexpr std::uint16_t kMinTemplateId = 256;  // RFC 7011 §3.4.1, RFC 3954 §5.2
constexpr std::uint16_t kAsTrans = 23456;      // RFC 6793 §2: 4-byte AS in a 2-byte field

std::uint64_t layout_key(const ipfix::FieldSpec& f) {
  return (std::uint64_t{f.enterprise} << 32) | (std::uint64_t{f.id} << 16) | f.length;
}

std::uint32_t sat32(std::uint64_t v) {
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(v, 0xffffffffu));
}
std::uint16_t sat16(std::uint64_t v) {
  return static_cast<std::uint16_t>(std::min<std::uint64_t>(v, 0xffffu));
}

std::string field_name(const ipfix::FieldSpec& f) {
  return ipfix::output_name(f.enterprise, f.id);
}

}  // namespace

// ---------------------------------------------------------------- configuration

Expected<EngineId, std::string> parse_engine_id(std::string_view text) {
  auto bad = [&] {
    return unexpected("bad engine '" + std::string(text) + "': expected TYPE:ID, TYPE 0..255");
  };
  EngineId e;
  std::string_view id_text = text;
  if (auto colon = text.find(':'); colon != std::string_view::npos) {
    unsigned type = 0;
    const auto t = text.substr(0, colon);
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), type);
    if (ec != std::errc{} || p != t.data() + t.size() || type > 255 || t.empty()) return bad();
    e.type = static_cast<std::uint8_t>(type);
    id_text = text.substr(colon + 1);
  }
  std::uint32_t id = 0;
  auto [p, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
  if (ec != std::errc{} || p != id_text.data() + id_text.size() || id_text.empty()) return bad();
  e.id = id;
  return e;
}

int default_version(std::span<const transport::Endpoint> collectors) {
  for (const auto& c : collectors) {
    if (transport::is_stream(c.scheme)) return 10;
  }
  return 9;
}

Expected<void, std::string> validate_export_config(
    const ExporterOptions& options, std::span<const transport::Endpoint> collectors) {
  const int v = options.version;
  if (v != 5 && v != 9 && v != 10) {
    return unexpected("-V " + std::to_string(v) + " is not a flow version (use 5, 9 or 10)");
  }
  if (collectors.empty()) return unexpected(std::string("no collector to export to (-n)"));
  if (v != 10) {
    // SPEC §3: v5/v9 have no message length field, so a byte stream cannot be framed
    // (RFC 7011 §10 frames IPFIX by its length).
    for (const auto& c : collectors) {
      if (transport::is_stream(c.scheme)) {
        return unexpected("-V " + std::to_string(v) + " cannot be sent over " + c.text +
                          ": NetFlow v" + std::to_string(v) +
                          " has no length field to frame a stream; use -V 10 over " +
                          std::string(transport::to_string(c.scheme)));
      }
    }
  }
  if (options.first_template_id < kMinTemplateId) {
    return unexpected("-U " + std::to_string(options.first_template_id) +
                      ": template ids start at 256 (RFC 7011 §3.4.1)");
  }
  if (v == 5 && options.engine.id > 255) {
    return unexpected("-E " + std::to_string(options.engine.type) + ":" +
                      std::to_string(options.engine.id) + ": NetFlow v5 engine id is 0..255");
  }
  if (v == 9 && options.fields) {
    for (const auto& f : *options.fields) {
      if (!ipfix::v9_type_for_element(f.enterprise, f.id, false)) {
        return unexpected("-T field " + field_name(f) +
                          " cannot be exported in NetFlow v9 (no v9 field type for enterprise " +
                          std::to_string(f.enterprise) + "); use -V 10 or remove it");
      }
    }
  }
  if (options.template_refresh_messages == 0) {
    return unexpected(std::string("template refresh every 0 messages: must be at least 1"));
  }
  return {};
}

// ---------------------------------------------------------------- internals

struct Exporter::Collector {
  std::unique_ptr<transport::Sender> sender;
  std::string endpoint;
  transport::Scheme scheme = transport::Scheme::udp;
  bool stream = false;
  std::atomic<bool> connected{false};
  std::atomic<std::uint64_t> messages{0}, records{0};
  // Producer thread: messages built but not yet handed to the io thread. They go in one
  // post per export_batch()/flush(), so the io thread wakes once and the UDP sender sends
  // them with one sendmmsg(2) (a post per message cost more than encoding the records).
  std::vector<transport::Message> outbox;
};

struct Exporter::Channel {
  std::vector<Collector*> targets;
  bool datagram = false;  // a target over udp/dtls: periodic template refresh (RFC 7011 §8.4)
  // IPFIX: data records sent (RFC 7011 §3.1); v9: packets (RFC 3954 §5.1); v5: flows.
  // Atomic because the on_connect hook reads (v9: advances) it on the io thread.
  std::atomic<std::uint32_t> sequence{0};
  std::vector<bool> announced;  // by layout index, producer thread
  std::uint32_t since_refresh = 0;
  Clock::time_point last_refresh{};
  bool refreshed = false;
  // Builders: the message of this channel being built (producer thread).
  std::unique_ptr<ipfix::IpfixMessageBuilder> ipfix;
  std::unique_ptr<ipfix::NetflowV9MessageBuilder> v9;
};

struct Exporter::Plan {
  ipfix::TemplatePtr input;
  std::optional<std::size_t> layout;  // nullopt: records of this template are not exportable
  std::string why;
  bool copy = false;        // record bytes go out unchanged
  bool has_uptime = false;  // 22/21 in the input: v5/v9 values are rebased per record
  struct Map {
    int src = -1;
    ipfix::FieldSpec out;
    ipfix::DataType type = ipfix::DataType::octetArray;
    std::optional<TimeElement> time;
  };
  std::vector<Map> maps;
};

struct Exporter::SharedTemplates {
  std::mutex mutex;
  std::vector<ipfix::TemplatePtr> templates;  // wire templates, every output layout so far
};

Exporter::Exporter(asio::io_context& io, std::vector<std::unique_ptr<transport::Sender>> senders,
                   ExporterOptions options, const Clock& clock)
    : io_(io),
      options_(std::move(options)),
      clock_(clock),
      shared_(std::make_shared<SharedTemplates>()),
      status_timer_(io),
      alive_(std::make_shared<std::atomic<bool>>(true)),
      pace_(std::make_shared<Pace>()) {
  if (!options_.wall_clock_ms) {
    options_.wall_clock_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  start_ms_ = options_.start_time_ms != 0 ? options_.start_time_ms : options_.wall_clock_ms();

  bool any_datagram = false;
  for (auto& s : senders) {
    auto c = std::make_unique<Collector>();
    // endpoint() is immutable data set when the sender was made; reading it here, before
    // any handler runs, is the one exception to "only on the io thread".
    c->endpoint = s->endpoint().text;
    c->scheme = s->endpoint().scheme;
    c->stream = transport::is_stream(c->scheme);
    c->connected = !c->stream;  // datagram senders have no connection to wait for
    any_datagram = any_datagram || !c->stream;
    c->sender = std::move(s);
    collectors_.push_back(std::move(c));
  }
  const std::size_t header = options_.version == 10 ? 16 : options_.version == 9 ? 20 : 24;
  max_size_ =
      options_.max_message_size != 0
          ? options_.max_message_size
          : (any_datagram ? ipfix::limits::kDefaultDatagramMessageSize : kDefaultStreamMessageSize);
  max_size_ = std::clamp<std::size_t>(max_size_, header + 48, ipfix::limits::kMaxMessageSize);

  auto make_channel = [&](std::vector<Collector*> targets) {
    auto ch = std::make_unique<Channel>();
    for (Collector* c : targets) ch->datagram = ch->datagram || !c->stream;
    ch->targets = std::move(targets);
    if (options_.version == 10) {
      ch->ipfix = std::make_unique<ipfix::IpfixMessageBuilder>(options_.engine.id, max_size_);
    } else if (options_.version == 9) {
      ch->v9 = std::make_unique<ipfix::NetflowV9MessageBuilder>(options_.engine.id, max_size_);
    }
    channels_.push_back(std::move(ch));
  };
  if (options_.all_collectors || collectors_.size() <= 1) {
    std::vector<Collector*> all;
    for (auto& c : collectors_) all.push_back(c.get());
    make_channel(std::move(all));
  } else {
    for (auto& c : collectors_) make_channel({c.get()});
  }

  // RFC 7011 §8: over a stream, the templates go first on every (re)connection; the
  // hook answers with the templates current at that moment.
  // Plain UDP has no connection: its sender calls the hook once, at once, which would
  // only race the in-band announcements; the periodic refresh serves it (RFC 7011 §8.4).
  for (auto& ch : channels_) {
    for (Collector* c : ch->targets) {
      if (c->scheme == transport::Scheme::udp) continue;
      Channel* chp = ch.get();
      asio::post(io_, [this, c, chp, alive = alive_] {
        if (!*alive) return;
        c->sender->set_on_connect([this, c, chp, alive] {
          if (!*alive) return std::vector<transport::Message>{};
          c->connected = true;
          return on_connect_messages(*chp);
        });
      });
    }
  }
  asio::post(io_, [this, alive = alive_] {
    if (*alive) start_status_timer();
  });
}

Exporter::~Exporter() {
  *alive_ = false;
}

std::int64_t Exporter::now_ms() const {
  return options_.wall_clock_ms();
}

std::uint32_t Exporter::uptime_ms(std::int64_t now) const {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(now - start_ms_, 0, 0xffffffffLL));
}

void Exporter::start_status_timer() {
  if (shut_down_) return;
  status_timer_.expires_after(std::chrono::seconds(1));
  status_timer_.async_wait([this, alive = alive_](const asio::error_code& ec) {
    if (ec || !*alive) return;
    update_status();
    start_status_timer();
  });
}

void Exporter::update_status() {
  for (auto& c : collectors_) c->connected = c->sender->stats().connected;
}

void Exporter::poll_status() {
  asio::post(io_, [this, alive = alive_] {
    if (*alive) update_status();
  });
}

void Exporter::count_not_exportable(std::string_view why) {
  ++not_exportable_;
  std::uint64_t suppressed = 0;
  if (drop_log_.allow(suppressed)) {
    log::warning(kComponent, "record not exportable: " + std::string(why) +
                                 (suppressed ? " (" + std::to_string(suppressed) + " more)" : ""));
  }
}

// ---------------------------------------------------------------- layouts and plans

std::optional<std::size_t> Exporter::layout_for(std::vector<ipfix::FieldSpec> fields,
                                                std::uint16_t scope_count) {
  std::vector<std::uint64_t> key;
  key.reserve(fields.size());
  for (const auto& f : fields) key.push_back(layout_key(f));
  auto k = std::make_pair(scope_count, std::move(key));
  if (auto it = layout_index_.find(k); it != layout_index_.end()) return it->second;
  const bool uptime = std::any_of(fields.begin(), fields.end(), [](const ipfix::FieldSpec& f) {
    return f.enterprise == 0 && (f.id == 21 || f.id == 22);
  });
  if (uptime && options_.version == 10 && !init_layout_) {
    // IPFIX has no sysUpTime in its header (RFC 7011 §3.1): 22/21 need the exporting
    // process's systemInitTimeMilliseconds (IE 160), sent as an options record with
    // observationDomainId (IE 149) as its scope, ahead of the first such template.
    // The record exists before its template is visible to the on_connect hook.
    init_record_.clear();
    ByteWriter w(init_record_);
    w.u32(options_.engine.id);
    w.u64(static_cast<std::uint64_t>(std::max<std::int64_t>(start_ms_, 0)));
    init_layout_ = layout_for({{0, 149, 4}, {0, 160, 8}}, 1);
  }
  const std::size_t id = options_.first_template_id + layouts_.size();
  if (id > 0xffff || layouts_.size() >= ipfix::limits::kMaxTemplatesPerSession) return std::nullopt;
  auto t = ipfix::Template::make(static_cast<std::uint16_t>(id), std::move(fields), scope_count);
  if (!t) return std::nullopt;
  const std::size_t index = layouts_.size();
  layouts_.push_back(*t);
  layout_uptime_.push_back(uptime);
  {
    std::lock_guard lock(shared_->mutex);
    shared_->templates.push_back(*t);
  }
  layout_index_.emplace(std::move(k), index);
  return index;
}

Exporter::Plan Exporter::make_plan(ipfix::TemplatePtr input) {
  Plan p;
  p.input = std::move(input);
  const ipfix::Template& in = *p.input;
  std::vector<ipfix::FieldSpec> out;
  std::uint16_t scope = 0;
  if (options_.fields) {
    if (in.is_options()) {
      p.why = "options record under -T";
      return p;
    }
    out = *options_.fields;
  } else {
    std::vector<std::string> dropped;
    const auto fields = in.fields();
    for (std::size_t i = 0; i < fields.size(); ++i) {
      ipfix::FieldSpec f = fields[i];
      const bool is_scope = i < in.scope_count();
      if (options_.version == 9) {
        if (!ipfix::v9_type_for_element(f.enterprise, f.id, is_scope)) {
          dropped.push_back(field_name(f));
          continue;
        }
        if (f.is_variable()) f.length = v9_fixed_length(f.enterprise, f.id);
      }
      if (is_scope) ++scope;
      out.push_back(f);
    }
    if (!dropped.empty()) {
      std::string names;
      for (const auto& n : dropped) names += (names.empty() ? "" : ", ") + n;
      log::warning(kComponent, "NetFlow v9 cannot carry " + names + " (template " +
                                   std::to_string(in.id()) + "): dropped from re-export");
    }
    if (out.empty() || (in.is_options() && scope == 0)) {
      p.why = "no field of template " + std::to_string(in.id()) + " fits NetFlow v9";
      return p;
    }
  }
  for (const auto& f : out) {
    Plan::Map m;
    m.src = in.index_of(f.enterprise, f.id);
    m.out = f;
    m.type = ipfix::element_type(f.enterprise, f.id);
    m.time = time_element(f.enterprise, f.id);
    p.maps.push_back(m);
  }
  p.has_uptime = in.index_of(0, 21) >= 0 || in.index_of(0, 22) >= 0;
  p.copy = in.scope_count() == scope &&
           std::equal(out.begin(), out.end(), in.fields().begin(), in.fields().end());
  p.layout = layout_for(std::move(out), scope);
  if (!p.layout)
    p.why = "no template id left (from -U " + std::to_string(options_.first_template_id) + ")";
  return p;
}

const Exporter::Plan& Exporter::plan_for(const ipfix::RecordBatch& batch,
                                         const ipfix::Template& t) {
  if (&t == last_template_ && last_plan_ != nullptr) return *last_plan_;
  auto it = plans_.find(&t);
  // The cached plan holds its TemplatePtr, so the address cannot have been reused.
  if (it == plans_.end()) {
    ipfix::TemplatePtr ptr;
    for (const auto& bt : batch.templates()) {
      if (bt.get() == &t) ptr = bt;
    }
    if (!ptr) ptr = std::shared_ptr<const ipfix::Template>(ipfix::TemplatePtr{}, &t);
    if (plans_.size() >= 4 * ipfix::limits::kMaxTemplatesPerSession) {
      plans_.clear();  // bound memory in a long-running proxy; plans are cheap to rebuild
    }
    it = plans_.emplace(&t, std::make_unique<Plan>(make_plan(std::move(ptr)))).first;
  }
  last_template_ = &t;
  last_plan_ = it->second.get();
  return *last_plan_;
}

// ---------------------------------------------------------------- messages

Exporter::Channel& Exporter::pick_channel() {
  const std::size_t n = channels_.size();
  if (n == 1) return *channels_[0];
  // SPEC §4: round-robin by message; a collector that is down is skipped until it comes
  // back. When all are down the data still waits somewhere: queued on the next in turn.
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t idx = (rr_next_ + i) % n;
    if (channels_[idx]->targets[0]->connected) {
      rr_next_ = (idx + 1) % n;
      return *channels_[idx];
    }
  }
  return *channels_[rr_next_ % n];
}

void Exporter::begin_message(Channel& ch) {
  current_ = &ch;
  const std::int64_t now = now_ms();
  const auto secs = static_cast<std::uint32_t>(std::max<std::int64_t>(now, 0) / 1000);
  if (ch.ipfix) ch.ipfix->begin(secs, ch.sequence.load());
  if (ch.v9) ch.v9->begin(uptime_ms(now), secs, ch.sequence.load());
  v5_.clear();
  maybe_refresh(ch);
}

bool Exporter::add_template_to(Channel& ch, std::size_t layout) {
  const ipfix::Template& t = *layouts_[layout];
  bool ok = ch.ipfix ? ch.ipfix->add_template(t) : ch.v9->add_template(t);
  // The IE 160 record travels with its template (a fresh collector needs both).
  if (ok && init_layout_ && layout == *init_layout_) ok = ch.ipfix->add_record(t, init_record_);
  if (ok) {
    if (ch.announced.size() <= layout) ch.announced.resize(layouts_.size(), false);
    ch.announced[layout] = true;
  }
  return ok;
}

void Exporter::maybe_refresh(Channel& ch) {
  if (!ch.datagram || layouts_.empty() || options_.version == 5) return;
  const auto now = clock_.now();
  // RFC 7011 §8.4 / SPEC §4: over datagrams templates are re-sent periodically, both
  // every N messages and every T seconds.
  const bool due = !ch.refreshed || ch.since_refresh >= options_.template_refresh_messages ||
                   now - ch.last_refresh >= options_.template_refresh_interval;
  if (!due) return;
  ch.refreshed = true;
  ch.since_refresh = 0;
  ch.last_refresh = now;
  for (std::size_t i = 0; i < layouts_.size(); ++i) {
    if (add_template_to(ch, i)) continue;
    // The set does not fit one message: send what we have, continue in the next.
    finish_message(ch);
    current_ = &ch;
    const std::int64_t ms = now_ms();
    const auto secs = static_cast<std::uint32_t>(std::max<std::int64_t>(ms, 0) / 1000);
    if (ch.ipfix) ch.ipfix->begin(secs, ch.sequence.load());
    if (ch.v9) ch.v9->begin(uptime_ms(ms), secs, ch.sequence.load());
    ch.since_refresh = 0;
    if (!add_template_to(ch, i)) {
      log::error(kComponent, "template " + std::to_string(layouts_[i]->id()) +
                                 " is larger than the message size");
    }
  }
}

void Exporter::finish_message(Channel& ch) {
  current_ = nullptr;
  transport::Message msg;
  std::uint32_t records = 0;
  if (ch.ipfix) {
    if (ch.ipfix->empty()) return;
    records = ch.ipfix->data_records();
    msg = ch.ipfix->finish();
    ch.sequence += records;  // RFC 7011 §3.1: data records, modulo 2^32
  } else if (ch.v9) {
    if (ch.v9->empty()) return;
    records = ch.v9->data_records();
    msg = ch.v9->finish();
    ++ch.sequence;  // RFC 3954 §5.1: export packets
  } else {
    if (v5_.empty()) return;
    const std::int64_t now = now_ms();
    ipfix::NetflowV5Header h;
    h.sys_uptime_ms = uptime_ms(now);
    h.unix_secs = static_cast<std::uint32_t>(std::max<std::int64_t>(now, 0) / 1000);
    h.unix_nsecs = static_cast<std::uint32_t>(std::max<std::int64_t>(now, 0) % 1000 * 1000000);
    h.flow_sequence = ch.sequence.load();  // flows before this datagram
    h.engine_type = options_.engine.type;
    h.engine_id = static_cast<std::uint8_t>(options_.engine.id);
    msg = ipfix::encode_netflow_v5(h, v5_);
    records = static_cast<std::uint32_t>(v5_.size());
    ch.sequence += records;
    v5_.clear();
  }
  ++ch.since_refresh;
  ++messages_;
  send_to(ch, std::move(msg), records);
}

void Exporter::send_to(Channel& ch, transport::Message msg, std::uint32_t records) {
  for (std::size_t i = 0; i < ch.targets.size(); ++i) {
    Collector* c = ch.targets[i];
    ++c->messages;
    c->records += records;
    c->outbox.push_back(i + 1 == ch.targets.size() ? std::move(msg) : msg);
  }
}

void Exporter::post_outboxes() {
  for (auto& owned : collectors_) {
    Collector* c = owned.get();
    if (c->outbox.empty()) continue;
    {
      std::unique_lock lock(pace_->mutex);
      pace_->taken.wait_for(lock, kPaceWait, [&] { return pace_->posted < kMaxPostedMessages; });
      pace_->posted += c->outbox.size();
    }
    asio::post(io_,
               [c, out = std::exchange(c->outbox, {}), alive = alive_, pace = pace_]() mutable {
                 {
                   std::lock_guard lock(pace->mutex);
                   pace->posted -= out.size();
                 }
                 pace->taken.notify_one();
                 if (!*alive) return;
                 for (auto& m : out) c->sender->send(std::move(m));
                 c->connected = c->sender->stats().connected;
               });
  }
}

std::vector<transport::Message> Exporter::on_connect_messages(Channel& ch) {
  // io thread. Every template of every layout so far, in as many messages as needed.
  std::vector<ipfix::TemplatePtr> templates;
  {
    std::lock_guard lock(shared_->mutex);
    templates = shared_->templates;
  }
  std::vector<transport::Message> out;
  if (templates.empty() || options_.version == 5) return out;
  const std::int64_t now = now_ms();
  const auto secs = static_cast<std::uint32_t>(std::max<std::int64_t>(now, 0) / 1000);
  if (options_.version == 10) {
    ipfix::IpfixMessageBuilder b(options_.engine.id, max_size_);
    b.begin(secs, ch.sequence.load());  // template-only messages do not advance it
    // The IE 160 layout is the only options layout with element 160; its record was
    // written before the template was published under the mutex.
    auto is_init = [](const ipfix::Template& t) {
      return t.is_options() && t.index_of(0, 160) >= 0;
    };
    for (const auto& t : templates) {
      if (b.add_template(*t) && (!is_init(*t) || b.add_record(*t, init_record_))) continue;
      if (!b.empty()) out.push_back(b.finish());
      if (b.add_template(*t) && is_init(*t)) (void)b.add_record(*t, init_record_);
    }
    if (!b.empty()) out.push_back(b.finish());
  } else {
    ipfix::NetflowV9MessageBuilder b(options_.engine.id, max_size_);
    // RFC 3954 §5.1 counts packets, but the producer owns the counter: a hook packet
    // (DTLS re-handshake only) repeats the current number rather than race it.
    auto begin = [&] { b.begin(uptime_ms(now), secs, ch.sequence.load()); };
    begin();
    for (const auto& t : templates) {
      if (b.add_template(*t)) continue;
      if (!b.empty()) {
        out.push_back(b.finish());
        begin();
      }
      if (!b.add_template(*t)) continue;
    }
    if (!b.empty()) out.push_back(b.finish());
  }
  hook_messages_ += out.size();
  return out;
}

void Exporter::add_records(std::size_t layout, Bytes records, std::size_t record_length) {
  const ipfix::Template& t = *layouts_[layout];
  if (record_length == 0) return count_not_exportable("empty record");
  while (records.size() >= record_length) {
    // Up to three tries: the current message, a fresh one (which may open with the
    // periodic template set), and a fresh one after that set went out alone.
    std::size_t added = 0;
    for (int attempt = 0; attempt < 3 && added == 0; ++attempt) {
      if (current_ == nullptr) begin_message(pick_channel());
      Channel& ch = *current_;
      auto announced = [&](std::size_t l) { return l < ch.announced.size() && ch.announced[l]; };
      bool ok = true;
      if (init_layout_ && layout_uptime_[layout] && !announced(*init_layout_)) {
        ok = add_template_to(ch, *init_layout_);
      }
      ok = ok && (announced(layout) || add_template_to(ch, layout));
      if (ok) {
        added = ch.ipfix ? ch.ipfix->add_records(t, records, record_length)
                         : ch.v9->add_records(t, records, record_length);
      }
      if (added > 0) break;
      const bool empty = ch.ipfix ? ch.ipfix->empty() : ch.v9->empty();
      if (empty && attempt > 0) break;
      finish_message(ch);
    }
    if (added == 0) {
      count_not_exportable("record of " + std::to_string(record_length) +
                           " bytes does not fit a message of " + std::to_string(max_size_));
      added = 1;  // that record is dropped, counted; the next ones may fit
    } else {
      records_exported_ += added;
    }
    records = records.subspan(added * record_length);
  }
}

// Uptime fields (21/22) count from the message's origin; they need rewriting only when
// that differs from ours. The probe's own flows share our origin and are copied whole.
bool Exporter::needs_rebase(const Plan& p, const ipfix::MessageMeta& m) const {
  return p.has_uptime &&
         (m.protocol == ipfix::Protocol::netflow_v5 || m.protocol == ipfix::Protocol::netflow_v9 ||
          ipfix::has_sys_uptime(m)) &&
         uptime_origin_ms(m, start_ms_) != start_ms_;
}

void Exporter::encode_record(const Plan& p, const ipfix::RecordView& r) {
  const std::int64_t origin = uptime_origin_ms(r.message(), start_ms_);
  const bool rebase = needs_rebase(p, r.message());
  if (p.copy && !rebase) return add_records(*p.layout, r.bytes(), r.bytes().size());
  in_fields_.clear();
  r.for_each_field([&](const ipfix::FieldValue& v) { in_fields_.push_back(v.value); });
  record_.clear();
  for (const auto& m : p.maps) {
    const bool have = m.src >= 0 && static_cast<std::size_t>(m.src) < in_fields_.size();
    const bool derive =
        m.time && (!have || (m.time->unit == TimeElement::Unit::sys_uptime_ms && rebase));
    if (derive) {
      if (auto abs = record_time_ms(r, m.time->end, origin)) {
        write_time_field(m.out, m.type, *m.time, *abs, start_ms_, record_);
        continue;
      }
    }
    if (have) {
      convert_field(m.out, m.type, in_fields_[static_cast<std::size_t>(m.src)], record_);
    } else {
      write_zero_field(m.out, m.type, record_);
    }
  }
  add_records(*p.layout, record_, record_.size());
}

void Exporter::export_v5(const ipfix::RecordView& r) {
  if (r.record_template().is_options()) return count_not_exportable("options record in NetFlow v5");
  auto src = r.field(0, 8);
  auto dst = r.field(0, 12);
  if (!src && !dst) {
    return count_not_exportable(r.field(0, 27) ? "IPv6 flow in NetFlow v5"
                                               : "record without IPv4 addresses in NetFlow v5");
  }
  auto u = [&](std::uint16_t id) { return r.unsigned_field(0, id).value_or(0); };
  auto u_or = [&](std::uint16_t id, std::uint16_t alt) {
    auto v = r.unsigned_field(0, id);
    return v ? *v : u(alt);
  };
  ipfix::NetflowV5Record v;
  v.src_addr = src && src->size() == 4 ? load_be<std::uint32_t>(src->data()) : 0;
  v.dst_addr = dst && dst->size() == 4 ? load_be<std::uint32_t>(dst->data()) : 0;
  if (auto nh = r.field(0, 15); nh && nh->size() == 4)
    v.next_hop = load_be<std::uint32_t>(nh->data());
  v.input = sat16(u(10));
  v.output = sat16(u(14));
  v.packets = sat32(u_or(2, 86));  // packetDeltaCount, else packetTotalCount
  v.octets = sat32(u_or(1, 85));   // octetDeltaCount, else octetTotalCount
  const std::int64_t origin = uptime_origin_ms(r.message(), start_ms_);
  auto rel = [&](bool end) -> std::uint32_t {
    auto abs = record_time_ms(r, end, origin);
    return abs ? uptime_ms(*abs) : 0;
  };
  v.first = rel(false);
  v.last = rel(true);
  v.src_port = sat16(u(7));
  v.dst_port = sat16(u(11));
  v.protocol = static_cast<std::uint8_t>(u(4));
  if ((v.protocol == 1 || v.protocol == 58) && v.dst_port == 0) {
    v.dst_port = sat16(u_or(32, 139));  // v5 carries ICMP type*256+code in the dst port
  }
  v.tcp_flags = static_cast<std::uint8_t>(u(6) & 0xff);
  v.tos = static_cast<std::uint8_t>(u(5));
  auto as16 = [](std::uint64_t as) {
    return as > 0xffff ? kAsTrans : static_cast<std::uint16_t>(as);
  };
  v.src_as = as16(u(16));
  v.dst_as = as16(u(17));
  v.src_mask = static_cast<std::uint8_t>(u(9));
  v.dst_mask = static_cast<std::uint8_t>(u(13));

  if (current_ == nullptr) begin_message(pick_channel());
  v5_.push_back(v);
  ++records_exported_;
  const std::size_t per_message = std::min<std::size_t>(
      ipfix::limits::kMaxV5Records,
      (max_size_ - ipfix::kNetflowV5HeaderSize) / ipfix::kNetflowV5RecordSize);
  if (v5_.size() >= per_message) finish_message(*current_);
}

void Exporter::export_batch(const ipfix::RecordBatch& batch) {
  records_in_ += batch.size();
  if (shut_down_ || channels_.empty()) {
    not_exportable_ += batch.size();
    return;
  }
  for (std::size_t i = 0; i < batch.size();) {
    const ipfix::RecordView r = batch[i];
    if (options_.version == 5) {
      export_v5(r);
      ++i;
      continue;
    }
    const Plan& p = plan_for(batch, r.record_template());
    if (!p.layout) {
      count_not_exportable(p.why);
      ++i;
      continue;
    }
    // The probe's flows: records of one fixed-length template and message, back to back,
    // copied whole; one copy per message instead of a pass through here per record.
    if (p.copy && !r.record_template().has_variable_length() && !needs_rebase(p, r.message())) {
      std::size_t end = i;
      const Bytes run = batch.run(i, end);
      add_records(*p.layout, run, r.bytes().size());
      i = end;
      continue;
    }
    encode_record(p, r);
    ++i;
  }
  if (options_.flush_each_batch) {
    flush();
  } else {
    post_outboxes();
  }
}

void Exporter::flush() {
  if (current_ != nullptr) finish_message(*current_);
  post_outboxes();
}

void Exporter::shutdown(std::chrono::milliseconds timeout, std::function<void(bool)> done) {
  flush();
  shut_down_ = true;
  asio::post(io_, [this, timeout, done = std::move(done), alive = alive_]() mutable {
    if (!*alive) return;
    status_timer_.cancel();
    if (collectors_.empty()) {
      if (done) done(true);
      return;
    }
    struct State {
      std::size_t left;
      bool ok = true;
      std::function<void(bool)> done;
    };
    auto state = std::make_shared<State>(State{collectors_.size(), true, std::move(done)});
    for (auto& c : collectors_) {
      c->sender->shutdown(timeout, [state](bool ok) {
        state->ok = state->ok && ok;
        if (--state->left == 0 && state->done) state->done(state->ok);
      });
    }
  });
}

ExporterStats Exporter::stats() const {
  ExporterStats s;
  s.records_in = records_in_;
  s.records_exported = records_exported_;
  s.records_not_exportable = not_exportable_;
  s.messages = messages_;
  s.template_messages_on_connect = hook_messages_;
  for (const auto& c : collectors_) {
    s.collectors.push_back(
        {c->endpoint, c->messages.load(), c->records.load(), c->connected.load()});
  }
  return s;
}

}  // namespace flowsec::exporter
