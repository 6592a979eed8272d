#include "app/cli.hpp"

#include <fmt/core.h>

#include <string_view>

#include "app/decode_command.hpp"
#include "app/options.hpp"
#include "app/service.hpp"

#ifndef FLOWSEC_VERSION
#define FLOWSEC_VERSION "0.0.0"
#endif

namespace flowsec::app {

int run(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "decode") {
    return decode_command(argc - 1, argv + 1);
  }
  auto options = parse_options(argc, argv);
  if (!options) {
    fmt::print(stderr, "flowsec: {}\n(flowsec --help lists the options)\n", options.error());
    return 2;
  }
  if (options->help) {
    fmt::print("flowsec {} — secure NetFlow/IPFIX probe, collector and proxy\n\n{}",
               FLOWSEC_VERSION, usage_text());
    return 0;
  }
  if (options->version) {
    fmt::print("flowsec {}\n", FLOWSEC_VERSION);
    return 0;
  }
  if (argc < 2) {
    fmt::print(stderr, "{}", usage_text());
    return 2;
  }
  auto service = Service::create(*options);
  if (!service) {
    fmt::print(stderr, "flowsec: {}\n", service.error());
    return 1;
  }
  return (*service)->run();
}

}  // namespace flowsec::app
