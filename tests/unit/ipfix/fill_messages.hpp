#pragma once
// Test helper shared by the IPFIX and NetFlow v9 builder tests: sends `records` (records of
// `t`, back to back, `length` bytes each) through a builder that already holds `t`'s
// template, either with add_records() or one add_record() at a time, finishing a message
// whenever one is full, and returns the finished messages. `next` starts the message after
// a finished one (the v9 builder needs begin(); the IPFIX one begins by itself).
#include <cstddef>
#include <vector>

#include <gtest/gtest.h>

#include "common/bytes.hpp"
#include "ipfix/template.hpp"

namespace flowsec::ipfix::testing {

template <class Builder, class Next>
std::vector<std::vector<std::byte>> fill_messages(Builder& b, Next next, const Template& t,
                                                  Bytes records, std::size_t length, bool bulk) {
  std::vector<std::vector<std::byte>> out;
  while (!records.empty()) {
    std::size_t n = 0;
    if (bulk) {
      n = b.add_records(t, records, length);
    } else {
      while (n * length < records.size() && b.add_record(t, records.subspan(n * length, length)))
        ++n;
    }
    if (n == 0) {
      EXPECT_FALSE(b.empty()) << "a record that fits no message";
      if (b.empty()) return out;
      out.push_back(b.finish());
      next();
      continue;
    }
    records = records.subspan(n * length);
  }
  out.push_back(b.finish());
  return out;
}

}  // namespace flowsec::ipfix::testing
