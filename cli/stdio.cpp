// Reading stdin and writing stdout so that nothing is lost silently: bounded lines, checked writes.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

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

bool read_line(std::istream& in, std::string& line, const char* name) {
  line.clear();
  // Read in pieces so an over-long line never sits in memory whole.
  char buf[1 << 16];
  bool any = false;
  for (;;) {
    errno = 0;
    in.get(buf, sizeof buf, '\n');
    const auto got = static_cast<size_t>(in.gcount());
    any = any || got > 0;
    // A few bytes past the limit, so the cut below can end on a whole character.
    constexpr size_t keep = kMaxLineBytes + 4;
    if (line.size() < keep) line.append(buf, std::min(got, keep - line.size()));
    if (in.bad())
      throw IoError(
          fmt::format("read error: {}: {}", name, errno ? std::strerror(errno) : "failed"));
    if (in.eof()) break;
    if (in.fail()) in.clear();  // an empty line, or nothing read: not an error
    if (in.peek() == '\n') {
      in.get();
      any = true;
      break;
    }
  }
  if (line.size() > kMaxLineBytes) line.resize(text::clip_utf8(line, kMaxLineBytes).size());
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return any || !in.eof();
}

}  // namespace gaze::cli
