#include "gaze/io/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "gaze/core/error.h"

namespace gaze::io {
namespace fs = std::filesystem;

const char* file_kind(mode_t m);

void write_atomic(const std::string& path,
                  const std::vector<std::pair<const void*, size_t>>& parts) {
  // The rename below replaces what is at `path`: never a device, FIFO or socket (`--output
  // /dev/full` must fail, not replace the device node with a file).
  struct stat st {};
  GAZE_CHECK(::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode), DataError,
             "{}: is {}; gaze writes regular files only", path, file_kind(st.st_mode));
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

const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

void require_regular_file(const std::string& path) {
  struct stat st {};
  GAZE_CHECK(::stat(path.c_str(), &st) == 0, DataError, "{}: cannot open ({})", path,
             std::strerror(errno));
  GAZE_CHECK(S_ISREG(st.st_mode), DataError, "{}: is {}; expected a regular file", path,
             file_kind(st.st_mode));
}

FileReader::FileReader(const std::string& path, size_t max_bytes) : path_(path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat on the open file then decides,
  // with no window for the path to change in between.
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  GAZE_CHECK(fd_ >= 0, DataError, "{}: cannot open ({})", path, std::strerror(errno));
  struct stat st {};
  const bool stat_ok = ::fstat(fd_, &st) == 0;
  const int err = errno;
  if (!stat_ok || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    GAZE_CHECK(stat_ok, DataError, "{}: cannot open ({})", path, std::strerror(err));
    throw DataError(fmt::format("{}: is {}; expected a regular file", path, file_kind(st.st_mode)));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > max_bytes) {
    ::close(fd_);
    throw DataError(
        fmt::format("{}: {} bytes is more than the {} bytes allowed here", path, size_, max_bytes));
  }
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
}

FileReader::~FileReader() {
  ::close(fd_);
}

void FileReader::read_at(uint64_t offset, size_t n, void* dst) const {
  char* p = static_cast<char*>(dst);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd_, p + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    GAZE_CHECK(r >= 0, DataError, "{}: read failed ({})", path_, std::strerror(errno));
    GAZE_CHECK(r > 0, DataError,
               "{}: the file ends at byte {}, before the {} bytes expected from byte {} (it "
               "changed while it was read)",
               path_, offset + got, n, offset);
    got += static_cast<size_t>(r);
  }
}

std::string read_file(const std::string& path, size_t max_bytes) {
  const FileReader file(path, max_bytes);
  std::string s(file.size(), '\0');
  file.read_at(0, s.size(), s.data());
  return s;
}

std::string file_in(const std::string& dir, const std::string& name, const std::string& where) {
  GAZE_CHECK(
      !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
          name.find('\0') == std::string::npos,
      DataError,
      "{}: file name '{}' must be a plain name of a file in the same folder (no '/' or '..')",
      where, name);
  const std::string path = dir + "/" + name;
  // A symlink may not lead out of the folder either (a model folder is self-contained).
  std::error_code ec;
  if (fs::is_symlink(path, ec)) {
    const fs::path target = fs::weakly_canonical(path, ec), root = fs::weakly_canonical(dir, ec);
    const auto [r, t] = std::mismatch(root.begin(), root.end(), target.begin(), target.end());
    GAZE_CHECK(!ec && r == root.end(), DataError,
               "{}: '{}' is a symlink that leads out of the folder (to {}); a model folder must "
               "hold its own files",
               where, name, target.string());
  }
  return path;
}

}  // namespace gaze::io
