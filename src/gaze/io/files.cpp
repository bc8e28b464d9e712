#include "gaze/io/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "gaze/core/error.h"

namespace gaze::io {

void write_atomic(const std::string& path,
                  const std::vector<std::pair<const void*, size_t>>& parts) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  GAZE_CHECK(fd >= 0, DataError, "{}: cannot write ({})", path, std::strerror(errno));
  bool ok = true;
  for (const auto& [data, size] : parts) {
    const char* p = static_cast<const char*>(data);
    size_t left = size;
    while (ok && left > 0) {
      const ssize_t w = ::write(fd, p, left);
      if (w < 0 && errno == EINTR) continue;
      ok = w > 0;
      if (ok) p += w, left -= static_cast<size_t>(w);
    }
  }
  const int err = errno;
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = ok ? errno : err;
    ::unlink(tmp.c_str());
    throw DataError(fmt::format("{}: write failed ({})", path, std::strerror(e)));
  }
}

void write_file_atomic(const std::string& path, const std::string& text) {
  write_atomic(path, {{text.data(), text.size()}});
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GAZE_CHECK(in, DataError, "{}: cannot open ({})", path, std::strerror(errno));
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  GAZE_CHECK(!in.bad(), DataError, "{}: read failed", path);
  return s;
}

}  // namespace gaze::io
