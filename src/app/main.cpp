#include "app/cli.hpp"

int main(int argc, char** argv) {
  return flowsec::app::run(argc, argv);
}
