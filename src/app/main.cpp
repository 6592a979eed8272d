#include <malloc.h>

#include "app/cli.hpp"

int main(int argc, char** argv) {
  // Each thread's malloc arena grows by at least 16 MiB and keeps that much when memory is
  // freed at its top. Messages and batches are built on one thread and freed on another,
  // in bursts; with glibc's default 128 KiB pad the exporter thread's arena shrank and grew
  // again thousands of times per second (3 652 mprotect(2) calls and their page faults for
  // the probe benchmark's trace; 62 with this). The pad is address space, touched only when
  // used.
  (void)::mallopt(M_TOP_PAD, 16 << 20);
  return flowsec::app::run(argc, argv);
}
