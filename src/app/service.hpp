#pragma once
// Service: one running flowsec — the wiring of SPEC §1's modes from Options.
//
//   collector  listeners (-3) → Collector → Fanout → outputs (-P files, ...)
//   proxy      the same, with an ExportSink (-n) among the outputs
//   replay     -i FILE.ipfix → batches → the same outputs
//   probe      capture (-i) → packets → flow cache → FlowEncoder → the same outputs,
//              with the export (-n) as one output (see probe.hpp)
//
// Threads: one io thread runs every socket (listeners, senders, metrics) and the
// signal handling; each output has its own worker (sinks::QueuedSink); the probe
// has its capture thread. The thread that calls run() only waits for the end
// (SIGINT/SIGTERM, or the end of a file input) and then shuts down in data-flow
// order: stop the inputs, flush the collector, close the outputs (which delivers
// everything still queued, TLS close_notify included) within --shutdown-timeout.
//
// Errors: create() returns the one-line start-up error (bad URL, unreadable
// certificate, port in use, SCTP missing, ...) for main() to print; nothing in a
// running service exits the process except a signal.
#include <memory>
#include <string>

#include "app/options.hpp"
#include "common/result.hpp"

namespace flowsec::app {

class Service {
 public:
  static Expected<std::unique_ptr<Service>, std::string> create(const Options& options);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Runs until a signal or the end of a file input; returns the process exit code
  // (0 = everything delivered).
  int run();

  struct Impl;

 private:
  explicit Service(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowsec::app
