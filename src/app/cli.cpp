#include "app/cli.hpp"

#include <cstdio>

namespace flowsec::app {
int run(int, char**) {
  std::puts("flowsec");
  return 0;
}
}  // namespace flowsec::app
