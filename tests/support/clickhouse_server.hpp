// Test support (header-only, flowsec::test): a private clickhouse-server for integration
// tests of the --clickhouse output (SPEC §6), on free loopback ports, with its data,
// temporary files, user files, format schemas and logs in a TempDir of its own.
//
// Contract:
//  - unavailable_reason() is empty when a server binary is installed (clickhouse-server
//    on PATH or in /usr/sbin — Debian 12's 18.16 — or a newer `clickhouse server`);
//    otherwise tests GTEST_SKIP with it.
//  - start() writes config.xml and users.xml (once; a restart reuses them, the data dir
//    and both ports), spawns the server and waits (bounded, 30 s by default) until
//    `GET /ping` answers "Ok.". False, with error() saying why (its log tail), if not.
//    The interserver port is left out of the config, so it is not opened. The server
//    runs as the current user (root is fine for 18.16 when the data dir is root's).
//  - stop() sends SIGTERM to the server's own PID and waits (bounded; SIGKILL to that PID
//    if it hangs). The destructor stops it.
//  - query(sql) POSTs over HTTP (libcurl, which flowsec_sinks already links) as the
//    default user or a given one; timeouts 2 s to connect, 30 s in all.
//  - Users: "default" without a password, plus those passed to the constructor, all
//    limited to loopback. The time zone is UTC so DateTime text is predictable.
#pragma once

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/flowsec_process.hpp"

namespace flowsec::test {

struct ClickHouseUser {
  std::string name, password;
};

struct ClickHouseReply {
  long status = 0;   // HTTP status, 0 when no answer came
  std::string body;  // the answer, or libcurl's error text when status == 0
  [[nodiscard]] bool ok() const { return status == 200; }
};

// One request to `url`: a POST of *body, or a GET when body is null; optional basic-auth
// credentials; `timeout_ms` in all (connect: at most 2 s).
inline ClickHouseReply clickhouse_request(const std::string& url, const std::string* body,
                                          const std::string& user = "",
                                          const std::string& password = "",
                                          long timeout_ms = 30000) {
  ClickHouseReply r;
  CURL* c = curl_easy_init();
  if (c == nullptr) {
    r.body = "curl_easy_init failed";
    return r;
  }
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (body != nullptr) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms, 2000L));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  if (!user.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, user.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, password.c_str());
  }
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(
      c, CURLOPT_WRITEFUNCTION,
      +[](char* data, std::size_t size, std::size_t n, void* out) -> std::size_t {
        static_cast<std::string*>(out)->append(data, size * n);
        return size * n;
      });
  const CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  } else {
    r.body = curl_easy_strerror(rc);
  }
  curl_easy_cleanup(c);
  return r;
}

// One POST of `body` to `url` with optional basic-auth credentials.
inline ClickHouseReply clickhouse_post(const std::string& url, const std::string& body,
                                       const std::string& user = "",
                                       const std::string& password = "") {
  return clickhouse_request(url, &body, user, password);
}

class ClickHouseServer {
 public:
  explicit ClickHouseServer(std::vector<ClickHouseUser> users = {})
      : dir_("clickhouse"), users_(std::move(users)) {}
  ~ClickHouseServer() { stop(); }
  ClickHouseServer(const ClickHouseServer&) = delete;
  ClickHouseServer& operator=(const ClickHouseServer&) = delete;

  // The command that starts a server here, empty if there is none.
  static std::vector<std::string> server_command() {
    if (have_command("clickhouse-server")) return {"clickhouse-server"};
    if (std::filesystem::exists("/usr/sbin/clickhouse-server")) {
      return {"/usr/sbin/clickhouse-server"};
    }
    if (have_command("clickhouse")) return {"clickhouse", "server"};
    return {};
  }
  static std::string unavailable_reason() {
    return server_command().empty()
               ? "clickhouse-server is not installed (Debian: clickhouse-server)"
               : "";
  }

  bool start(std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    if (process_ && process_->running()) return true;
    if (http_port_ == 0) {
      http_port_ = free_tcp_port();
      tcp_port_ = free_tcp_port();
      write_config();
    }
    auto argv = server_command();
    if (argv.empty()) {
      error_ = unavailable_reason();
      return false;
    }
    argv.push_back("--config-file=" + dir_ / "config.xml");
    process_ = std::make_unique<ChildProcess>(argv, dir_ / "stdout.log", dir_ / "stdout.log");
    const bool up = wait_for(
        [&] {
          if (!process_->running()) return true;
          const auto r = get_ping();
          return r == "Ok.\n";
        },
        limit, std::chrono::milliseconds(50));
    if (!up || !process_->running()) {
      error_ = "clickhouse-server did not answer /ping on port " + std::to_string(http_port_) +
               " (" + process_->exit_description() + "): " + log_tail();
      process_->kill_now();
      return false;
    }
    return true;
  }

  // SIGTERM to its PID, bounded wait (then SIGKILL to that PID). True if it ended by itself.
  bool stop(std::chrono::milliseconds grace = std::chrono::seconds(20)) {
    if (!process_) return true;
    const bool clean = process_->stop(SIGTERM, grace);
    process_.reset();
    return clean;
  }

  [[nodiscard]] bool running() const { return process_ && process_->running(); }
  [[nodiscard]] std::uint16_t http_port() const { return http_port_; }
  [[nodiscard]] std::uint16_t tcp_port() const { return tcp_port_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] const std::string& dir() const { return dir_.path(); }
  [[nodiscard]] std::string http_url() const {
    return "http://127.0.0.1:" + std::to_string(http_port_) + "/";
  }
  // A --clickhouse URL for this server ("user:password@" when user is given).
  [[nodiscard]] std::string sink_url(const std::string& database, const std::string& table,
                                     const std::string& user = "",
                                     const std::string& password = "") const {
    std::string auth;
    if (!user.empty()) auth = user + (password.empty() ? "" : ":" + password) + "@";
    return "http://" + auth + "127.0.0.1:" + std::to_string(http_port_) + "/" + database +
           "?table=" + table;
  }

  ClickHouseReply query(const std::string& sql, const std::string& user = "",
                        const std::string& password = "") const {
    return clickhouse_post(http_url(), sql, user, password);
  }
  // The first line of a query's answer ("" when it failed), for scalar results.
  std::string scalar(const std::string& sql) const {
    const auto r = query(sql);
    if (!r.ok()) return "";
    return r.body.substr(0, r.body.find('\n'));
  }

  // The last lines of the server's error log and stdout, for failure messages.
  [[nodiscard]] std::string log_tail(std::size_t bytes = 2000) const {
    std::string s = slurp_file(dir_ / "log/server.err.log") + slurp_file(dir_ / "stdout.log");
    return s.size() > bytes ? s.substr(s.size() - bytes) : s;
  }

 private:
  std::string get_ping() const {
    const auto r = clickhouse_request(http_url() + "ping", nullptr, "", "", 1000);
    return r.ok() ? r.body : "";
  }

  void write_config() {
    const std::string d = dir_.path();
    for (const char* sub : {"data", "tmp", "user_files", "format_schemas", "log"}) {
      (void)dir_.subdir(sub);
    }
    std::ofstream(dir_ / "config.xml")
        << "<?xml version=\"1.0\"?>\n<yandex>\n"
        << "  <logger><level>warning</level><log>" << d << "/log/server.log</log>"
        << "<errorlog>" << d << "/log/server.err.log</errorlog>"
        << "<size>10M</size><count>1</count></logger>\n"
        << "  <http_port>" << http_port_ << "</http_port>\n"
        << "  <tcp_port>" << tcp_port_ << "</tcp_port>\n"
        << "  <listen_host>127.0.0.1</listen_host>\n"
        // An idle keep-alive connection (the sink keeps one) holds up a SIGTERM shutdown
        // until it times out: short, so stop() is quick.
        << "  <keep_alive_timeout>1</keep_alive_timeout>\n"
        << "  <path>" << d << "/data/</path>\n"
        << "  <tmp_path>" << d << "/tmp/</tmp_path>\n"
        << "  <user_files_path>" << d << "/user_files/</user_files_path>\n"
        << "  <format_schema_path>" << d << "/format_schemas/</format_schema_path>\n"
        << "  <users_config>" << d << "/users.xml</users_config>\n"
        << "  <default_profile>default</default_profile>\n"
        << "  <default_database>default</default_database>\n"
        << "  <mark_cache_size>67108864</mark_cache_size>\n"
        << "  <uncompressed_cache_size>67108864</uncompressed_cache_size>\n"
        << "  <timezone>UTC</timezone>\n"
        << "  <mlock_executable>false</mlock_executable>\n"
        << "</yandex>\n";
    std::string users =
        "<?xml version=\"1.0\"?>\n<yandex>\n"
        "  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default>"
        "</profiles>\n  <users>\n";
    std::vector<ClickHouseUser> all{{"default", ""}};
    all.insert(all.end(), users_.begin(), users_.end());
    for (const auto& u : all) {
      users += "    <" + u.name + "><password>" + u.password +
               "</password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>"
               "<profile>default</profile><quota>default</quota></" +
               u.name + ">\n";
    }
    users +=
        "  </users>\n  <quotas><default><interval><duration>3600</duration><queries>0</queries>"
        "<errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows>"
        "<execution_time>0</execution_time></interval></default></quotas>\n</yandex>\n";
    std::ofstream(dir_ / "users.xml") << users;
  }

  TempDir dir_;
  std::vector<ClickHouseUser> users_;
  std::uint16_t http_port_ = 0, tcp_port_ = 0;
  std::unique_ptr<ChildProcess> process_;
  std::string error_;
};

}  // namespace flowsec::test
