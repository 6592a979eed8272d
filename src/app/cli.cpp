#include "app/cli.hpp"

#include <fmt/core.h>

#include <cstring>
#include <string_view>

#include "app/decode_command.hpp"

#ifndef FLOWSEC_VERSION
#define FLOWSEC_VERSION "0.0.0"
#endif

namespace flowsec::app {
namespace {

void usage(std::FILE* to) {
  fmt::print(to,
             "flowsec {} — secure NetFlow/IPFIX probe, collector and proxy\n"
             "\n"
             "usage:\n"
             "  flowsec decode [-D t|j|c|b] [-w OUT] FILE...   print the flows of exporter\n"
             "                 captures (pcap/pcapng) and IPFIX files\n"
             "  flowsec -h | --help        this text\n"
             "  flowsec -v | --version     version\n"
             "\n"
             "Probe, collector and proxy modes (nProbe's -i/-n/-3 command lines) are not\n"
             "built yet in this version.\n",
             FLOWSEC_VERSION);
}

}  // namespace

int run(int argc, char** argv) {
  if (argc >= 2) {
    const std::string_view first = argv[1];
    if (first == "decode") return decode_command(argc - 1, argv + 1);
    if (first == "-h" || first == "--help") {
      usage(stdout);
      return 0;
    }
    if (first == "-v" || first == "--version") {
      fmt::print("flowsec {}\n", FLOWSEC_VERSION);
      return 0;
    }
  }
  usage(stderr);
  return 2;
}

}  // namespace flowsec::app
