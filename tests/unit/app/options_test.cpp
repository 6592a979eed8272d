// The command line of SPEC §2: nProbe's command lines parse with only the program
// name changed; the configuration file and its overriding rules; one-line errors.
#include "app/options.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

namespace flowsec::app {
namespace {

Expected<Options, std::string> parse(const std::vector<std::string>& args) {
  std::vector<std::string> storage{"flowsec"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : storage) argv.push_back(a.data());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

std::string write_config(const std::string& text) {
  std::string path = ::testing::TempDir() + "flowsec_options_" + std::to_string(::getpid()) + "_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".conf";
  std::ofstream(path) << text;
  return path;
}

TEST(Options, NprobeCollectorCommandLine) {
  // SPEC §1, collector row, verbatim.
  auto o = parse({"-i", "none", "-n", "none", "--collector-port", "tls://2055", "--tls-cert",
                  "c.pem", "--tls-priv-key", "k.pem", "-P", "/var/lib/flowsec"});
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->interface, "none");
  EXPECT_TRUE(o->collectors.empty());
  EXPECT_EQ(o->listen, std::vector<std::string>{"tls://2055"});
  EXPECT_EQ(o->tls_cert, "c.pem");
  EXPECT_EQ(o->tls_key, "k.pem");
  EXPECT_EQ(o->dump_path, "/var/lib/flowsec");
  EXPECT_EQ(o->dump_format, 't');
}

TEST(Options, NprobeListenForms) {
  for (const std::string arg : {"tls://localhost:2055", "udp://2055", "2055"}) {
    auto o = parse({"-i", "none", "-3", arg});
    ASSERT_TRUE(o) << o.error();
    EXPECT_EQ(o->listen, std::vector<std::string>{arg});
  }
}

TEST(Options, ProbeCommandLinesOfNtopsTlsHowTo) {
  auto o = parse({"-i", "eth0", "--collector", "tls://collector.example.org:2055"});
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->interface, "eth0");
  EXPECT_EQ(o->collectors, std::vector<std::string>{"tls://collector.example.org:2055"});
  EXPECT_FALSE(o->tls_insecure);
  // nProbe needs --tls-insecure before -n; flowsec takes it anywhere (SPEC §2).
  auto after = parse({"-i", "eth0", "-n", "tls://c.example.org:2055", "--tls-insecure"});
  ASSERT_TRUE(after) << after.error();
  EXPECT_TRUE(after->tls_insecure);
}

TEST(Options, ShortLongAttachedAndEqualsForms) {
  auto o = parse({"-ieth1",
                  "--flow-version=10",
                  "-V",
                  "9",
                  "-T",
                  "%IPV4_SRC_ADDR %IN_BYTES",
                  "-E",
                  "2:7",
                  "-t",
                  "30",
                  "--idle-timeout=15",
                  "-M",
                  "1000",
                  "-D",
                  "j",
                  "-F",
                  "5",
                  "-b",
                  "1",
                  "-a",
                  "-U",
                  "300",
                  "-s",
                  "128"});
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->interface, "eth1");
  EXPECT_EQ(o->flow_version, 9);  // the later one wins
  EXPECT_EQ(o->flow_template, "%IPV4_SRC_ADDR %IN_BYTES");
  EXPECT_EQ(o->engine_type, 2);
  EXPECT_EQ(o->engine_id, 7u);
  EXPECT_EQ(o->lifetime_timeout, 30u);
  EXPECT_EQ(o->idle_timeout, 15u);
  EXPECT_EQ(o->max_flows, 1000u);
  EXPECT_EQ(o->dump_format, 'j');
  EXPECT_EQ(o->dump_frequency, 5u);
  EXPECT_EQ(o->verbose, 1);
  EXPECT_TRUE(o->all_collectors);
  EXPECT_EQ(o->template_id, 300);
  EXPECT_EQ(o->snaplen, 128u);
}

TEST(Options, CollectorsAreRepeatableAndCommaLists) {
  auto o =
      parse({"-i", "eth0", "-n", "udp://a:2055,tcp://b:2055", "-n", "tls://[2001:db8::1]:4740"});
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->collectors,
            (std::vector<std::string>{"udp://a:2055", "tcp://b:2055", "tls://[2001:db8::1]:4740"}));
}

TEST(Options, ErrorsNameTheArgument) {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"-V", "7"}, "option -V: '7' is not 5, 9 or 10"},
      {{"--flow-version=6"}, "option --flow-version: '6' is not 5, 9 or 10"},
      {{"-x"}, "unknown option -x"},
      {{"--no-such-thing"}, "unknown option --no-such-thing"},
      {{"-i"}, "option -i needs a value"},
      {{"-t", "abc"}, "option -t: 'abc' is not a number"},
      {{"-U", "12"}, "option -U: '12' is outside 256..65535"},
      {{"-D", "x"}, "option -D: 'x' is not t, j, c or b"},
      {{"-E", "300:1"}, "option -E: engine type '300' is outside 0..255"},
      {{"-E", "5"}, "option -E: '5' is not TYPE:ID"},
      {{"-a=1"}, "option -a takes no value"},
      {{"-n", "udp://a:1,,udp://b:2"}, "option -n: empty item in list"},
      {{"a.conf", "b.conf"},
       "unexpected argument 'b.conf' (only one configuration file may be given)"},
  };
  for (const auto& c : cases) {
    auto o = parse(c.args);
    ASSERT_FALSE(o) << c.error;
    EXPECT_EQ(o.error(), c.error);
  }
}

TEST(Options, ConfigurationFileWithCommentsAndBothValueForms) {
  const std::string path = write_config(
      "# flowsec collector\n"
      "\n"
      "--collector-port=tls://4740\n"
      "--collector-port udp://2055\n"
      "-b=1\n"
      "  -P /var/lib/flowsec  \n"
      "--tls-insecure\n"
      "--flow-templ=%IPV4_SRC_ADDR %IPV4_DST_ADDR\n"
      "-T %IN_BYTES %IN_PKTS\n");
  auto o = parse({path});
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->config_file, path);
  EXPECT_EQ(o->listen, (std::vector<std::string>{"tls://4740", "udp://2055"}));
  EXPECT_EQ(o->verbose, 1);
  EXPECT_EQ(o->dump_path, "/var/lib/flowsec");
  EXPECT_TRUE(o->tls_insecure);
  EXPECT_EQ(o->flow_template, "%IN_BYTES %IN_PKTS");
  std::remove(path.c_str());
}

TEST(Options, CommandLineOverridesTheFile) {
  const std::string path =
      write_config("-b=2\n--collector=udp://a:2055\n--collector=udp://b:2055\n-P /tmp/x\n");
  // Scalars: the command line wins wherever it stands; lists: the command line replaces.
  auto o = parse({"-b", "0", path, "-n", "tls://c:4740"});
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->verbose, 0);
  EXPECT_EQ(o->collectors, std::vector<std::string>{"tls://c:4740"});
  EXPECT_EQ(o->dump_path, "/tmp/x");
  std::remove(path.c_str());
}

TEST(Options, ConfigurationFileErrorsNameFileAndLine) {
  const std::string path = write_config("-b=1\n-V=8\n");
  auto o = parse({path});
  ASSERT_FALSE(o);
  EXPECT_EQ(o.error(), path + ":2: option -V: '8' is not 5, 9 or 10");
  std::remove(path.c_str());
  const std::string bad = write_config("collector=udp://a:1\n");
  auto o2 = parse({bad});
  ASSERT_FALSE(o2);
  EXPECT_EQ(o2.error(), bad + ":1: 'collector=udp://a:1' is not an option");
  std::remove(bad.c_str());
  auto missing = parse({"/nonexistent/flowsec.conf"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), "configuration file '/nonexistent/flowsec.conf': cannot be read");
}

TEST(Options, UsageListsEveryLongOption) {
  const std::string usage = usage_text();
  for (const char* name :
       {"--interface",      "--bpf-filter",       "--snaplen",      "--collector",
        "--all-collectors", "--collector-port",   "--flow-version", "--flow-templ",
        "--flow-templ-id",  "--lifetime-timeout", "--idle-timeout", "--max-num-flows",
        "--netflow-engine", "--dump-path",        "--dump-format",  "--dump-frequency",
        "--tls-cert",       "--tls-priv-key",     "--tls-ca",       "--tls-insecure",
        "--tls-peer",       "--metrics",          "--verbose",      "--user",
        "--pid-file",       "--collector-allow",  "--help",         "--version"}) {
    EXPECT_NE(usage.find(name), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace flowsec::app
