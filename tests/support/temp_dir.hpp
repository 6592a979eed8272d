// Test support (header-only, flowsec::test): a temporary directory for one test.
// Contract: TempDir(tag) creates a fresh, empty directory
// <system temp dir>/flowsec-<tag>-<PID>-<N> (N counts up per process, so no other TempDir
// of any thread or test process has the same name); the destructor removes the directory
// and everything in it (errors ignored). Not copyable. No macros needed, so unit and
// integration tests alike can use it; flowsec_process.hpp includes it.
//  - path(): the directory; dir / "name": <path>/name (not created);
//  - subdir("name"): <path>/name, created;
//  - write("name", bytes): <path>/name holding exactly `bytes` (replaced if it exists).
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace flowsec::test {

// `dir`/`stem`-PID-N: a name no other call (any thread) or test process uses.
inline std::string unique_path(const std::string& dir, const std::string& stem) {
  static std::atomic<int> counter{0};
  return dir + "/" + stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

// A fresh directory under the system temp dir, removed with everything in it on
// destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag)
      : path_(unique_path(std::filesystem::temp_directory_path().string(), "flowsec-" + tag)) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  // <path>/<name>, created.
  [[nodiscard]] std::string subdir(const std::string& name) const {
    const std::string p = *this / name;
    std::filesystem::create_directories(p);
    return p;
  }
  // <path>/<name> with exactly `bytes` in it (truncated first if it exists); its path.
  std::string write(const std::string& name, std::string_view bytes) const {
    const std::string p = *this / name;
    std::ofstream(p, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }
  std::string write(const std::string& name, std::span<const std::byte> bytes) const {
    return write(name, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }

 private:
  std::string path_;
};

}  // namespace flowsec::test
