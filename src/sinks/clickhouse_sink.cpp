#include "sinks/clickhouse_sink.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <set>
#include <thread>
#include <utility>

#include "common/ip_address.hpp"
#include "common/log.hpp"
#include "common/shared_library.hpp"
#include "sinks/uptime_converter.hpp"

namespace flowsec::sinks {

namespace {

constexpr std::string_view kComponent = "clickhouse";
constexpr std::size_t kMaxIdentifier = 64;
constexpr std::size_t kMaxReplyBytes = 4096;  // error text kept from a reply
constexpr long kConnectTimeoutMs = 2000;
constexpr long kRequestTimeoutMs = 30000;

using steady = std::chrono::steady_clock;

bool is_identifier(std::string_view s) {
  return !s.empty() && s.size() <= kMaxIdentifier && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 §2.1 percent-decoding; nullopt for a bad %XX.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string qualified(const ClickHouseTarget& t) {
  return "`" + t.database + "`.`" + t.table + "`";
}

// The first line of a server reply, trimmed and bounded (ClickHouse: "Code: 81, ...").
std::string first_line(std::string_view text) {
  const auto nl = text.find_first_of("\r\n");
  std::string s(text.substr(0, nl));
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.pop_back();
  if (s.size() > 300) s = s.substr(0, 300) + "...";
  return s.empty() ? "(empty reply)" : s;
}

// libcurl's functions, loaded with the first ClickHouse output (README: dependencies).
struct CurlApi {
  SharedLibrary library;
  decltype(&::curl_global_init) global_init = nullptr;
  decltype(&::curl_easy_strerror) easy_strerror = nullptr;
  decltype(&::curl_version_info) version_info = nullptr;
  decltype(&::curl_easy_init) easy_init = nullptr;
  decltype(&::curl_easy_cleanup) easy_cleanup = nullptr;
  // Variadic, like the function itself (curl.h wraps the name in a type-checking macro
  // under GCC; decltype(&name) takes the function).
  decltype(&::curl_easy_setopt) easy_setopt = nullptr;
  decltype(&::curl_easy_perform) easy_perform = nullptr;
  decltype(&::curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&::curl_slist_append) slist_append = nullptr;
  decltype(&::curl_slist_free_all) slist_free_all = nullptr;
};

Expected<CurlApi, std::string> load_curl() {
  auto lib = SharedLibrary::open(FLOWSEC_LIBCURL_SONAME);
  if (!lib) return unexpected("ClickHouse output needs libcurl: " + lib.error());
  CurlApi a{std::move(*lib)};
  const SharedLibrary& l = a.library;
  const Expected<void, std::string> bound[] = {
      l.bind(a.global_init, "curl_global_init"),   l.bind(a.easy_strerror, "curl_easy_strerror"),
      l.bind(a.version_info, "curl_version_info"), l.bind(a.easy_init, "curl_easy_init"),
      l.bind(a.easy_cleanup, "curl_easy_cleanup"), l.bind(a.easy_setopt, "curl_easy_setopt"),
      l.bind(a.easy_perform, "curl_easy_perform"), l.bind(a.easy_getinfo, "curl_easy_getinfo"),
      l.bind(a.slist_append, "curl_slist_append"), l.bind(a.slist_free_all, "curl_slist_free_all"),
  };
  for (const auto& b : bound) {
    if (!b) return unexpected("ClickHouse output needs libcurl: " + b.error());
  }
  // Once per process, before any other libcurl call (libcurl-tutorial(3)).
  if (const CURLcode rc = a.global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
    return unexpected(std::string("clickhouse: libcurl initialisation failed: ") +
                      a.easy_strerror(rc));
  }
  return a;
}

// Loaded once (thread-safe) and never unloaded: a sink worker may still be inside libcurl
// while static destructors run at exit, and unloading would gain nothing then.
const Expected<CurlApi, std::string>& curl_api() {
  static const auto* const api = new Expected<CurlApi, std::string>(load_curl());
  return *api;
}

struct Reply {
  bool sent = false;  // an HTTP answer came back
  long status = 0;
  std::string body;
  std::string error;  // transport error (libcurl) when !sent
  [[nodiscard]] bool ok() const { return sent && status == 200; }
  [[nodiscard]] std::string describe() const {
    if (!sent) return error;
    return "HTTP " + std::to_string(status) + ": " + first_line(body);
  }
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  const std::size_t len = size * n;
  if (out->size() < kMaxReplyBytes) {
    out->append(data, std::min(len, kMaxReplyBytes - out->size()));
  }
  return len;
}

// URL-encodes a query parameter value (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0x0f];
    }
  }
  return out;
}

}  // namespace

Expected<ClickHouseTarget, std::string> parse_clickhouse_url(std::string_view url) {
  const auto fail = [&](const std::string& what) {
    return unexpected("--clickhouse " + std::string(url) + ": " + what);
  };
  ClickHouseTarget t;
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return fail("expected http://HOST:PORT/DATABASE");
  const std::string scheme = lower(url.substr(0, sep));
  if (scheme != "http" && scheme != "https") {
    return fail("scheme must be http or https, not '" + scheme + "'");
  }
  if (scheme == "https") t.port = 8443;
  std::string_view rest = url.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) return fail("a fragment (#) is not allowed");
  const auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  if (slash == std::string_view::npos || rest[slash] != '/') {
    return fail("the database is missing (http://HOST:PORT/DATABASE)");
  }
  rest = rest.substr(slash + 1);

  // [USER[:PASS]@]: the last '@' ends it (an unencoded '@' in the password still works).
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon));
    auto pass = colon == std::string_view::npos ? std::optional<std::string>(std::string())
                                                : percent_decode(userinfo.substr(colon + 1));
    if (!user || !pass) return fail("bad %-escape in the user or password");
    t.user = std::move(*user);
    t.password = std::move(*pass);
    if (t.user.empty() && !t.password.empty()) t.user = "default";
  }

  // HOST[:PORT]
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return fail("unterminated [IPv6] address");
    const std::string_view inner = authority.substr(1, close - 1);
    const auto addr = IpAddress::parse(inner);
    if (!addr || !addr->is_v6()) {
      return fail("'" + std::string(inner) + "' in [] is not an IPv6 address");
    }
    t.host = std::string(authority.substr(0, close + 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("unexpected text after the [IPv6] address");
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    const auto colon = authority.find(':');
    t.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
    const bool name_ok = std::all_of(t.host.begin(), t.host.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.';
    });
    if (!name_ok) return fail("host '" + t.host + "' is not a name or an IPv4 address");
  }
  if (t.host.empty()) return fail("the host is missing");
  if (has_port) {
    unsigned long port = 0;
    const bool digits = !port_text.empty() && port_text.size() <= 5 &&
                        std::all_of(port_text.begin(), port_text.end(), [](char c) {
                          return std::isdigit(static_cast<unsigned char>(c)) != 0;
                        });
    if (digits) port = std::stoul(std::string(port_text));
    if (!digits || port == 0 || port > 65535) {
      return fail("port '" + std::string(port_text) + "' is not a number in 1..65535");
    }
    t.port = static_cast<std::uint16_t>(port);
  }

  // /DATABASE[?table=NAME]
  const auto q = rest.find('?');
  const std::string_view db = rest.substr(0, q);
  if (db.empty()) return fail("the database is missing (http://HOST:PORT/DATABASE)");
  if (!is_identifier(db)) {
    return fail("database '" + std::string(db) +
                "' must be 1..64 characters of A-Z a-z 0-9 _ (one path segment)");
  }
  t.database = std::string(db);
  if (q != std::string_view::npos) {
    std::string_view query = rest.substr(q + 1);
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string_view param = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (param.empty()) continue;
      const auto eq = param.find('=');
      const std::string_view key = param.substr(0, eq);
      const std::string_view value =
          eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1);
      if (key != "table") {
        return fail("unknown parameter '" + std::string(key) + "' (only table=NAME)");
      }
      if (!is_identifier(value)) {
        return fail("table '" + std::string(value) + "' must be 1..64 characters of A-Z a-z 0-9 _");
      }
      t.table = std::string(value);
    }
  }
  t.base_url = scheme + "://" + t.host + ":" + std::to_string(t.port) + "/";
  return t;
}

std::string clickhouse_create_table_sql(const ClickHouseTarget& target) {
  return "CREATE TABLE IF NOT EXISTS " + qualified(target) + " (" +
         clickhouse_column_definitions() +
         ") ENGINE = MergeTree PARTITION BY toYYYYMMDD(FIRST_SWITCHED) "
         "ORDER BY (FIRST_SWITCHED, IPV4_SRC_ADDR, IPV4_DST_ADDR)";
}

std::string clickhouse_insert_sql(const ClickHouseTarget& target) {
  return "INSERT INTO " + qualified(target) + " (" + clickhouse_column_names() +
         ") FORMAT TabSeparated";
}

std::chrono::milliseconds clickhouse_retry_delay(std::uint32_t failures,
                                                 std::chrono::milliseconds retry_min,
                                                 std::chrono::milliseconds retry_max) {
  if (failures == 0) return std::chrono::milliseconds::zero();
  retry_min = std::max(retry_min, std::chrono::milliseconds(1));
  retry_max = std::max(retry_max, retry_min);
  auto d = retry_min;
  for (std::uint32_t i = 1; i < failures && d < retry_max; ++i) d *= 2;
  return std::min(d, retry_max);
}

// ---- the sink ------------------------------------------------------------------------

struct ClickHouseSink::Impl {
  struct Chunk {
    std::string tsv;
    std::size_t rows = 0;
    steady::time_point since;  // when its first row arrived
    bool sealed = false;       // sent once: resent byte for byte (block deduplication)
  };

  explicit Impl(const CurlApi& curl_api) : api(curl_api) {}

  const CurlApi& api;
  ClickHouseSinkOptions options;
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  std::string create_url, insert_url, columns_url;
  UptimeConverter converter;
  std::deque<Chunk> chunks;
  std::size_t pending = 0;  // rows in chunks
  bool table_ready = false;
  bool closed = false;
  std::uint32_t failures = 0;
  steady::time_point next_attempt{};
  log::RateLimiter limiter{5, std::chrono::seconds(10)};
  std::atomic<std::uint64_t> pending_rows{0}, written{0}, failed{0}, errors{0};

  ~Impl() {
    if (curl != nullptr) api.easy_cleanup(curl);
    if (headers != nullptr) api.slist_free_all(headers);
  }

  void warn(const std::string& text) {
    std::uint64_t suppressed = 0;
    if (!limiter.allow(suppressed)) return;
    std::string line = text;
    if (suppressed > 0) line += " (" + std::to_string(suppressed) + " similar messages suppressed)";
    log::warning(kComponent, line);
  }

  // One POST; `timeout` bounds the whole request.
  Reply post(const std::string& url, std::string_view body, std::chrono::milliseconds timeout) {
    Reply r;
    api.easy_setopt(curl, CURLOPT_URL, url.c_str());
    api.easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    api.easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    api.easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
    const long total = std::max<long>(1, static_cast<long>(timeout.count()));
    api.easy_setopt(curl, CURLOPT_TIMEOUT_MS, total);
    api.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, std::min(total, kConnectTimeoutMs));
    const CURLcode rc = api.easy_perform(curl);
    if (rc != CURLE_OK) {
      r.error = api.easy_strerror(rc);
      return r;
    }
    r.sent = true;
    api.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    return r;
  }

  Reply create_table(std::chrono::milliseconds timeout) {
    return post(create_url, clickhouse_create_table_sql(options.target), timeout);
  }

  // The columns the sink inserts that the table lacks (at open, when the server answers).
  Expected<std::vector<std::string>, std::string> missing_columns() {
    const auto& t = options.target;
    const std::string sql = "SELECT name FROM system.columns WHERE database = '" + t.database +
                            "' AND table = '" + t.table + "' FORMAT TabSeparated";
    const Reply r = post(columns_url, sql, std::chrono::milliseconds(kRequestTimeoutMs));
    if (!r.ok()) return unexpected(r.describe());
    std::set<std::string, std::less<>> have;
    std::size_t pos = 0;
    while (pos < r.body.size()) {
      const auto nl = r.body.find('\n', pos);
      have.insert(r.body.substr(pos, nl - pos));
      if (nl == std::string::npos) break;
      pos = nl + 1;
    }
    std::vector<std::string> missing;
    for (const auto& c : clickhouse_columns()) {
      if (!have.contains(c.name)) missing.emplace_back(c.name);
    }
    return missing;
  }

  void append(const ipfix::RecordBatch& in) {
    const ipfix::RecordBatch& batch = converter.convert(in);
    const ClickHouseExporterColumns exporter = clickhouse_exporter_columns(batch.exporter);
    const auto now = steady::now();
    std::uint64_t dropped = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const ipfix::RecordView rec = batch[i];
      if (!is_flow_record(rec)) continue;
      if (pending >= options.max_pending_rows) {
        ++dropped;
        continue;
      }
      if (chunks.empty() || chunks.back().sealed || chunks.back().rows >= options.batch_rows) {
        chunks.push_back(Chunk{{}, 0, now, false});
      }
      Chunk& c = chunks.back();
      append_tsv(clickhouse_row(rec), exporter, c.tsv);
      ++c.rows;
      ++pending;
    }
    pending_rows.store(pending, std::memory_order_relaxed);
    if (dropped > 0) {
      failed.fetch_add(dropped, std::memory_order_relaxed);
      warn(std::to_string(dropped) + " rows dropped: " + std::to_string(pending) +
           " rows already wait for " + options.target.base_url + " (max_pending_rows)");
    }
  }

  [[nodiscard]] bool due(steady::time_point now) const {
    if (chunks.empty()) return false;
    const Chunk& c = chunks.front();
    return c.sealed || c.rows >= options.batch_rows || chunks.size() > 1 ||
           now - c.since >= options.flush_interval;
  }

  void failure(const std::string& what, const Reply& r) {
    errors.fetch_add(1, std::memory_order_relaxed);
    ++failures;
    table_ready = false;
    const auto delay = clickhouse_retry_delay(failures, options.retry_min, options.retry_max);
    next_attempt = steady::now() + delay;
    warn(what + " at " + options.target.base_url + " failed (" + r.describe() + "); " +
         std::to_string(pending) + " rows pending, retry in " + std::to_string(delay.count()) +
         " ms");
  }

  // Sends the front chunk (after the CREATE if needed). False when a request failed.
  bool send_one(std::chrono::milliseconds timeout) {
    if (!table_ready) {
      const Reply r = create_table(timeout);
      if (!r.ok()) {
        failure("CREATE TABLE " + qualified(options.target), r);
        return false;
      }
      table_ready = true;
    }
    Chunk& c = chunks.front();
    c.sealed = true;
    const Reply r = post(insert_url, c.tsv, timeout);
    if (!r.ok()) {
      failure("INSERT of " + std::to_string(c.rows) + " rows", r);
      return false;
    }
    if (failures > 0) {
      log::info(kComponent, "inserting into " + options.target.base_url + " again after " +
                                std::to_string(failures) + " failed attempts");
    }
    failures = 0;
    written.fetch_add(c.rows, std::memory_order_relaxed);
    pending -= c.rows;
    chunks.pop_front();
    pending_rows.store(pending, std::memory_order_relaxed);
    return true;
  }

  void maybe_send() {
    const auto now = steady::now();
    if (!due(now) || now < next_attempt) return;
    (void)send_one(std::chrono::milliseconds(kRequestTimeoutMs));
  }
};

Expected<std::unique_ptr<ClickHouseSink>, std::string> ClickHouseSink::open(
    ClickHouseSinkOptions options) {
  const auto& loaded = curl_api();
  if (!loaded) return unexpected(loaded.error());
  const CurlApi& api = *loaded;
  const std::string where = "ClickHouse " + options.target.base_url;
  if (options.target.base_url.starts_with("https:")) {
    const curl_version_info_data* info = api.version_info(CURLVERSION_NOW);
    if (info == nullptr || (info->features & CURL_VERSION_SSL) == 0) {
      return unexpected(where + ": this libcurl has no TLS support for https://");
    }
  }
  options.batch_rows = std::max<std::size_t>(options.batch_rows, 1);
  auto impl = std::make_unique<Impl>(api);
  impl->options = std::move(options);
  const ClickHouseTarget& t = impl->options.target;
  impl->curl = api.easy_init();
  if (impl->curl == nullptr) return unexpected(where + ": curl_easy_init failed");
  // "Expect:" off: libcurl would otherwise wait for 100-continue before large bodies.
  impl->headers = api.slist_append(nullptr, "Expect:");
  impl->headers = api.slist_append(impl->headers, "Content-Type: text/plain; charset=UTF-8");
  CURL* c = impl->curl;
  api.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM: we run on a worker thread
  api.easy_setopt(c, CURLOPT_HTTPHEADER, impl->headers);
  api.easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
  api.easy_setopt(c, CURLOPT_POST, 1L);
  api.easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  if (!t.user.empty()) {
    api.easy_setopt(c, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    api.easy_setopt(c, CURLOPT_USERNAME, t.user.c_str());
    api.easy_setopt(c, CURLOPT_PASSWORD, t.password.c_str());
  }
  impl->create_url = t.base_url;
  impl->columns_url = t.base_url;
  impl->insert_url = t.base_url + "?query=" + url_encode(clickhouse_insert_sql(t));

  const Reply r = impl->create_table(std::chrono::milliseconds(kRequestTimeoutMs));
  if (!r.sent) {
    log::warning(kComponent, where + " is not reachable (" + r.error +
                                 "); the table will be created before the first insert");
  } else if (!r.ok()) {
    return unexpected(where + ": cannot create table " + qualified(t) + ": " + r.describe());
  } else {
    auto missing = impl->missing_columns();
    if (!missing) {
      return unexpected(where + ": cannot read the columns of " + qualified(t) + ": " +
                        missing.error());
    }
    if (!missing->empty()) {
      std::string names;
      for (const auto& m : *missing) names += (names.empty() ? "" : ", ") + m;
      return unexpected(where + ": table " + qualified(t) +
                        " exists without the columns flowsec inserts: " + names);
    }
    impl->table_ready = true;
  }
  return std::unique_ptr<ClickHouseSink>(new ClickHouseSink(std::move(impl)));
}

ClickHouseSink::ClickHouseSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ClickHouseSink::~ClickHouseSink() = default;

void ClickHouseSink::write(const ipfix::RecordBatch& batch) {
  Impl& s = *impl_;
  if (s.closed) {
    s.failed.fetch_add(batch.size(), std::memory_order_relaxed);
    return;
  }
  s.append(batch);
  s.maybe_send();
}

void ClickHouseSink::tick(std::chrono::system_clock::time_point /*now*/) {
  if (!impl_->closed) impl_->maybe_send();
}

void ClickHouseSink::close() {
  Impl& s = *impl_;
  if (s.closed) return;
  s.closed = true;
  const auto deadline = steady::now() + s.options.linger;
  while (!s.chunks.empty()) {
    const auto now = steady::now();
    if (now >= deadline) break;
    if (now < s.next_attempt) {
      std::this_thread::sleep_until(std::min(s.next_attempt, deadline));
      continue;
    }
    (void)s.send_one(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
  }
  if (s.pending > 0) {
    s.failed.fetch_add(s.pending, std::memory_order_relaxed);
    log::error(kComponent, std::to_string(s.pending) + " rows not inserted into " +
                               s.options.target.base_url + " within the linger time");
    s.chunks.clear();
    s.pending = 0;
    s.pending_rows.store(0, std::memory_order_relaxed);
  }
  // Everything written reached the server: nothing dropped at the bound nor left now.
  delivered_ = s.failed.load(std::memory_order_relaxed) == 0;
}

SinkStats ClickHouseSink::stats() const {
  SinkStats s;
  s.records_written = impl_->written.load(std::memory_order_relaxed);
  s.records_failed = impl_->failed.load(std::memory_order_relaxed);
  s.errors = impl_->errors.load(std::memory_order_relaxed);
  s.records_pending = impl_->pending_rows.load(std::memory_order_relaxed);
  return s;
}

std::uint64_t ClickHouseSink::pending_rows() const {
  return impl_->pending_rows.load(std::memory_order_relaxed);
}

}  // namespace flowsec::sinks
