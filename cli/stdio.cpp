// Reading stdin and writing stdout so that nothing is lost silently: bounded lines, checked writes.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

#include <poll.h>
#include <unistd.h>

#include <fmt/format.h>

#include "cli/commands.h"
#include "gaze/text/utf8.h"

namespace gaze::cli {

void check_stdout() {
  errno = 0;
  std::cout.flush();
  if (!std::cout)
    throw IoError(fmt::format("write error: {}", errno ? std::strerror(errno) : "stdout failed"));
}

bool LineReader::fill() {
  if (eof_) return false;
  if (pos_ > 0) buf_.erase(0, pos_), pos_ = 0;
  const size_t have = buf_.size();
  buf_.resize(have + (size_t{1} << 16));
  ssize_t n;
  do {
    n = ::read(fd_, buf_.data() + have, buf_.size() - have);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw IoError(fmt::format("read error: {}: {}", name_, std::strerror(errno)));
  buf_.resize(have + static_cast<size_t>(n));
  eof_ = n == 0;
  return n > 0;
}

bool LineReader::ready() const {
  if (buf_.find('\n', pos_) != std::string::npos || eof_) return true;
  pollfd p{fd_, POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  return n != 0;  // readable, at its end, or failing: next() will say which
}

bool LineReader::next(std::string& line) {
  line.clear();
  bool any = false;
  for (;;) {
    const size_t nl = buf_.find('\n', pos_);
    const size_t end = nl == std::string::npos ? buf_.size() : nl;
    // A few bytes past the limit, so the cut below can end on a whole character; the rest of an
    // over-long line is passed over without being kept.
    constexpr size_t keep = kMaxLineBytes + 4;
    if (line.size() < keep) line.append(buf_, pos_, std::min(end - pos_, keep - line.size()));
    any = any || end > pos_;
    pos_ = end;
    if (nl != std::string::npos) {
      ++pos_;
      any = true;
      break;
    }
    if (!fill()) break;
  }
  if (!any) return false;
  if (line.size() > kMaxLineBytes) line.resize(text::clip_utf8(line, kMaxLineBytes).size());
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

}  // namespace gaze::cli
