#pragma once
// read_file_head: the first bytes of a file, to tell its format by its magic number.
//
// Contract: reads up to out.size() bytes from the start of the file at `path` and returns
// how many it got: fewer at the end of a short file, 0 when the file cannot be opened or
// read (the caller then treats it as "not this format"). Plain open(2)/read(2): a
// std::ifstream here built the C++ locale on the first call, the largest single cost of
// start-up after loading the libraries (docs/benchmarks.md).
#include <cstddef>
#include <span>
#include <string>

namespace flowsec {

[[nodiscard]] std::size_t read_file_head(const std::string& path, std::span<std::byte> out);

}  // namespace flowsec
