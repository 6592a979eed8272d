#include "common/file_head.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace flowsec {

std::size_t read_file_head(const std::string& path, std::span<std::byte> out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return got;
}

}  // namespace flowsec
