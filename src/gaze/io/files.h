// Whole-file reads and atomic writes: a write goes to a temporary file beside the target, is
// flushed to disk and renamed over it, so a crash never leaves a partial file.
#pragma once

#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace gaze::io {

// Writes the byte ranges `parts`, in order, to `path` atomically; DataError names the path.
void write_atomic(const std::string& path,
                  const std::vector<std::pair<const void*, size_t>>& parts);
void write_file_atomic(const std::string& path, const std::string& text);
// The most bytes read_file reads by default (16 GiB: the largest checkpoints) and the limit for
// small metadata files (JSON descriptions, vocabularies' descriptions).
inline constexpr size_t kMaxFileBytes = size_t{16} << 30;
inline constexpr size_t kMaxMetadataBytes = size_t{256} << 20;

// The whole file; DataError ("path: cannot open (reason)") if it cannot be read, is not a regular
// file (a directory, a FIFO that would block forever, a device such as /dev/zero that never ends,
// also behind a symlink) or is larger than max_bytes.
std::string read_file(const std::string& path, size_t max_bytes = kMaxFileBytes);
// A regular file (the checks of read_file, max_bytes included) opened for reads of exact byte
// ranges, so a reader can put each part of a file straight where it belongs (safetensors: into
// each tensor's storage).
class FileReader {
 public:
  explicit FileReader(const std::string& path,
                      size_t max_bytes = std::numeric_limits<size_t>::max());
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;
  const std::string& path() const { return path_; }
  size_t size() const { return size_; }  // as it was when opened
  // Bytes [offset, offset + n) into dst; DataError if the file ends before (it changed while it
  // was read).
  void read_at(uint64_t offset, size_t n, void* dst) const;

 private:
  std::string path_;
  int fd_ = -1;
  size_t size_ = 0;
};

// DataError unless `path` is a regular file (symlinks followed): for readers that stream a file
// themselves.
void require_regular_file(const std::string& path);
// `dir`/`name` for a file name a model folder's own description gives (tokenizer.json's "vocab"):
// DataError naming `where` unless it is a plain file name and, if a symlink, one that stays inside
// the folder, so the folder cannot point elsewhere.
std::string file_in(const std::string& dir, const std::string& name, const std::string& where);

}  // namespace gaze::io
