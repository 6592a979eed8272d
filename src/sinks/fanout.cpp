#include "sinks/fanout.hpp"

#include <utility>

namespace flowsec::sinks {

Fanout::~Fanout() {
  if (!closed_) close();
}

void Fanout::add(std::unique_ptr<Sink> sink, QueuedSinkOptions options) {
  outputs_.push_back(std::make_unique<QueuedSink>(std::move(sink), std::move(options)));
}

std::size_t Fanout::publish(const BatchPtr& batch, WhenFull when_full) {
  std::size_t refused = 0;
  for (const auto& out : outputs_) {
    if (!out->push(batch, when_full)) ++refused;
  }
  return refused;
}

bool Fanout::close(std::chrono::milliseconds timeout) {
  closed_ = true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Ask all first, so they drain in parallel; then wait for each against the same deadline.
  for (const auto& out : outputs_) out->begin_close();
  bool all = true;
  for (const auto& out : outputs_) {
    if (!out->finish_close(deadline)) all = false;
  }
  return all;
}

std::vector<OutputStats> Fanout::stats() const {
  std::vector<OutputStats> v;
  v.reserve(outputs_.size());
  for (const auto& out : outputs_) v.push_back(OutputStats{out->name(), out->stats()});
  return v;
}

}  // namespace flowsec::sinks
