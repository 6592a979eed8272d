// Integration: libcurl, libzmq and libndpi are loaded at run time by the component that
// needs them (the ClickHouse output, the ntopng output, the L7 classifier), never linked
// (README "Dependencies": they cost most of flowsec's start-up).
//  - No DT_NEEDED entry for them in flowsec nor in this test binary, which links every
//    module; the ELF dynamic section is read here (<elf.h>), and must list libc.so.6.
//  - In this process each library is mapped (dl_iterate_phdr) only once its user exists.
//  - With the three library files masked (bind-mounted over by an empty file in a private
//    mount namespace: unshare -m, needs root): `flowsec --version` and a probe with
//    --no-l7 run; --clickhouse, --ntopng and a probe with L7 fail at start-up with one
//    line naming the missing library and a non-zero exit (not a signal).
// Expected values: the library names come from the files this process mapped; the probe's
// input is tests/data/probe/whatsapp_login_chat.pcap.
#include <elf.h>
#include <gtest/gtest.h>
#include <link.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flow/l7_classifier.hpp"
#include "sinks/clickhouse_sink.hpp"
#include "sinks/ntopng_sink.hpp"
#include "support/flowsec_process.hpp"

namespace flowsec::test {
namespace {

using namespace std::chrono_literals;

// File name (soname) prefixes of the libraries loaded at run time.
constexpr std::string_view kCurl = "libcurl";
constexpr std::string_view kZmq = "libzmq";
constexpr std::string_view kNdpi = "libndpi";

// DT_NEEDED entries of a 64-bit ELF file; nullopt when it cannot be read as one.
std::optional<std::vector<std::string>> needed_libraries(const std::string& path) {
  // Reads only the headers and the dynamic section: the debug binaries are hundreds of MB.
  std::ifstream in(path, std::ios::binary);
  const auto read = [&](std::uint64_t offset, auto& out) {
    in.clear();
    in.seekg(static_cast<std::streamoff>(offset));
    return static_cast<bool>(
        in.read(reinterpret_cast<char*>(&out), static_cast<std::streamsize>(sizeof out)));
  };
  Elf64_Ehdr eh{};
  if (!read(0, eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64) {
    return std::nullopt;
  }
  const auto section = [&](std::uint64_t i, Elf64_Shdr& sh) {
    return read(eh.e_shoff + i * eh.e_shentsize, sh);
  };
  for (std::uint64_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr dynamic{};
    Elf64_Shdr strings{};
    if (!section(i, dynamic)) return std::nullopt;
    if (dynamic.sh_type != SHT_DYNAMIC) continue;
    if (!section(dynamic.sh_link, strings)) return std::nullopt;
    std::vector<std::string> out;
    for (std::uint64_t off = 0; off + sizeof(Elf64_Dyn) <= dynamic.sh_size;
         off += sizeof(Elf64_Dyn)) {
      Elf64_Dyn d{};
      if (!read(dynamic.sh_offset + off, d)) return std::nullopt;
      if (d.d_tag == DT_NULL) break;
      if (d.d_tag != DT_NEEDED) continue;
      std::string name;  // NUL-terminated within the string table
      const std::uint64_t at = strings.sh_offset + d.d_un.d_val;
      for (char c = 0; read(at + name.size(), c) && c != '\0';) name += c;
      if (!in) return std::nullopt;
      out.push_back(std::move(name));
    }
    return out;
  }
  return std::vector<std::string>{};  // statically linked
}

void expect_not_linked(const std::string& binary) {
  const auto needed = needed_libraries(binary);
  ASSERT_TRUE(needed) << binary << " is not a readable 64-bit ELF file";
  std::string all;
  for (const auto& n : *needed) all += n + " ";
  EXPECT_NE(std::find(needed->begin(), needed->end(), "libc.so.6"), needed->end()) << all;
  for (const auto& n : *needed) {
    for (const auto prefix : {kCurl, kZmq, kNdpi}) {
      EXPECT_FALSE(std::string_view(n).starts_with(prefix))
          << binary << " links " << n << " again; it must be loaded at run time";
    }
  }
}

TEST(RuntimeLibraries, FlowsecDoesNotLinkThem) {
  expect_not_linked(flowsec_binary());
}

TEST(RuntimeLibraries, TestBinaryWithEveryModuleDoesNotLinkThem) {
  expect_not_linked("/proc/self/exe");
}

// The path of the mapped library whose file name starts with `prefix`, if any.
std::optional<std::string> mapped_library(std::string_view prefix) {
  struct Search {
    std::string_view prefix;
    std::optional<std::string> found;
  } search{prefix, std::nullopt};
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        auto* s = static_cast<Search*>(data);
        const std::string_view path = info->dlpi_name != nullptr ? info->dlpi_name : "";
        const auto slash = path.rfind('/');
        const auto file = slash == std::string_view::npos ? path : path.substr(slash + 1);
        if (!file.starts_with(s->prefix)) return 0;
        s->found = std::string(path);
        return 1;
      },
      &search);
  return search.found;
}

void make_classifier() {
  auto c = flow::L7Classifier::create();
  ASSERT_TRUE(c) << c.error();
}

void make_ntopng_output() {
  sinks::NtopngSinkOptions o;
  o.endpoint = "tcp://127.0.0.1:0";
  o.linger = 0ms;
  auto s = sinks::NtopngSink::open(std::move(o));
  ASSERT_TRUE(s) << s.error();
  (*s)->close();
}

void make_clickhouse_output() {
  // Nobody listens there: not an error for open() (the table is created later).
  auto target = sinks::parse_clickhouse_url("http://127.0.0.1:" + std::to_string(free_tcp_port()) +
                                            "/netflow");
  ASSERT_TRUE(target) << target.error();
  sinks::ClickHouseSinkOptions o;
  o.target = *target;
  o.linger = 0ms;
  auto s = sinks::ClickHouseSink::open(std::move(o));
  ASSERT_TRUE(s) << s.error();
  (*s)->close();
}

TEST(RuntimeLibraries, NdpiIsLoadedByTheFirstClassifier) {
  ASSERT_FALSE(mapped_library(kNdpi)) << *mapped_library(kNdpi);
  make_classifier();
  EXPECT_TRUE(mapped_library(kNdpi));
}

TEST(RuntimeLibraries, ZmqIsLoadedByTheFirstNtopngOutput) {
  ASSERT_FALSE(mapped_library(kZmq)) << *mapped_library(kZmq);
  make_ntopng_output();
  EXPECT_TRUE(mapped_library(kZmq));
}

TEST(RuntimeLibraries, CurlIsLoadedByTheFirstClickHouseOutput) {
  ASSERT_FALSE(mapped_library(kCurl)) << *mapped_library(kCurl);
  make_clickhouse_output();
  EXPECT_TRUE(mapped_library(kCurl));
}

// ---------------------------------------------------------------- libraries missing

struct Masked {
  std::string file;  // the library's file, masked
  std::string name;  // its file name as loaded (the soname)
};

class RuntimeLibrariesMissing : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_command("unshare") || !have_command("mount")) {
      GTEST_SKIP() << "unshare or mount (util-linux) is not installed";
    }
    if (!run_command({"unshare", "-m", "true"}, dir_.path()).ok()) {
      GTEST_SKIP() << "no private mount namespace (unshare -m needs root)";
    }
    ASSERT_NO_FATAL_FAILURE(make_classifier());
    ASSERT_NO_FATAL_FAILURE(make_ntopng_output());
    ASSERT_NO_FATAL_FAILURE(make_clickhouse_output());
    for (const auto prefix : {kCurl, kZmq, kNdpi}) {
      const auto path = mapped_library(prefix);
      ASSERT_TRUE(path) << prefix;
      masked_.push_back({std::filesystem::canonical(*path).string(),
                         std::filesystem::path(*path).filename().string()});
    }
    empty_ = dir_.write("empty.so", "");
  }

  // flowsec `args` where the three library files read as empty.
  CommandResult run(const std::vector<std::string>& args) {
    std::string script;
    for (const auto& m : masked_) {
      script += "mount --bind " + shell_quote(empty_) + " " + shell_quote(m.file) + " && ";
    }
    script += "exec " + shell_quote(flowsec_binary());
    for (const auto& a : args) script += " " + shell_quote(a);
    return run_command({"unshare", "-m", "sh", "-c", script}, dir_.path(), 30s);
  }

  // One "flowsec: ..." line naming the library, a non-zero exit and no signal.
  void expect_startup_error(const std::vector<std::string>& args, std::string_view prefix,
                            std::string_view what) {
    const CommandResult r = run(args);
    ASSERT_TRUE(r.exit_code.has_value()) << "killed by a signal or still running:\n" << r.err;
    EXPECT_NE(*r.exit_code, 0) << r.err;
    std::vector<std::string> errors;
    for (const auto& line : lines_of(r.err)) {
      if (line.starts_with("flowsec: ")) errors.push_back(line);
    }
    ASSERT_EQ(errors.size(), 1u) << r.err;
    EXPECT_NE(errors[0].find(what), std::string::npos) << errors[0];
    for (const auto& m : masked_) {
      if (m.name.starts_with(prefix)) {
        EXPECT_NE(errors[0].find(m.name), std::string::npos) << errors[0];
      }
    }
  }

  TempDir dir_{"runtime-libs"};
  std::vector<Masked> masked_;
  std::string empty_;
};

TEST_F(RuntimeLibrariesMissing, VersionRuns) {
  const CommandResult r = run({"--version"});
  EXPECT_TRUE(r.ok()) << r.err;
  EXPECT_NE(r.out.find("flowsec"), std::string::npos) << r.out;
}

TEST_F(RuntimeLibrariesMissing, ClickHouseOutputFailsNamingLibcurl) {
  expect_startup_error({"-i", "none", "-3", "udp://127.0.0.1:0", "--clickhouse",
                        "http://127.0.0.1:" + std::to_string(free_tcp_port()) + "/netflow"},
                       kCurl, "ClickHouse output needs libcurl");
}

TEST_F(RuntimeLibrariesMissing, NtopngOutputFailsNamingLibzmq) {
  expect_startup_error({"-i", "none", "-3", "udp://127.0.0.1:0", "--ntopng", "zmq://127.0.0.1:0"},
                       kZmq, "ntopng output needs libzmq");
}

TEST_F(RuntimeLibrariesMissing, ProbeWithL7FailsNamingLibndpiAndRunsWithout) {
  const std::string pcap = data_path("probe/whatsapp_login_chat.pcap");
  expect_startup_error({"-i", pcap, "-P", "-", "-D", "j"}, kNdpi,
                       "L7 classification needs libndpi");
  const CommandResult r = run({"-i", pcap, "--no-l7", "-P", "-", "-D", "j"});
  EXPECT_TRUE(r.ok()) << r.err;
  EXPECT_FALSE(lines_of(r.out).empty()) << r.err;
}

}  // namespace
}  // namespace flowsec::test
