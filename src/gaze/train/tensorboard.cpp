#include "gaze/train/tensorboard.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "gaze/core/error.h"

namespace gaze::train {
namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// TFRecord's masked CRC: rotated and offset, so that a CRC of data holding CRCs stays strong.
uint32_t masked(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

// Protocol buffer encoding, the four wire types an Event needs.
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void key(std::string& out, int field, int wire) {
  varint(out, static_cast<uint64_t>(field << 3 | wire));
}
template <class T>
void fixed(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian on the machines gaze runs on
  out.append(b, sizeof(T));
}
void bytes(std::string& out, int field, const std::string& s) {
  key(out, field, 2);
  varint(out, s.size());
  out += s;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Event{wall_time = 1, step = 2, then file_version = 3 or summary = 5}.
std::string event(int64_t step) {
  std::string e;
  key(e, 1, 1);
  fixed(e, now_seconds());
  key(e, 2, 0);
  varint(e, static_cast<uint64_t>(step));
  return e;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = crc_table()[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

EventWriter::EventWriter(const std::string& dir) {
  char host[256] = "localhost";
  (void)gethostname(host, sizeof host - 1);
  path_ = (std::filesystem::path(dir) /
           fmt::format("events.out.tfevents.{}.{}.gaze", static_cast<int64_t>(now_seconds()), host))
              .string();
  f_ = std::fopen(path_.c_str(), "ab");
  GAZE_CHECK(f_, DataError, "{}: cannot write the TensorBoard event file ({})", path_,
             std::strerror(errno));
  std::string e = event(0);
  bytes(e, 3, "brain.Event:2");
  record(e);
}

EventWriter::~EventWriter() {
  if (f_) std::fclose(f_);
}

void EventWriter::scalar(const std::string& tag, int64_t step, double value) {
  std::string v;  // Summary.Value{tag = 1, simple_value = 2}
  bytes(v, 1, tag);
  key(v, 2, 5);
  fixed(v, static_cast<float>(value));
  std::string summary;  // Summary{value = 1}
  bytes(summary, 1, v);
  std::string e = event(step);
  bytes(e, 5, summary);
  record(e);
}

// A TFRecord: length (uint64), its masked CRC, the data, the data's masked CRC.
void EventWriter::record(const std::string& data) {
  std::string r;
  const uint64_t n = data.size();
  fixed(r, n);
  fixed(r, masked(crc32c(r.data(), 8)));
  r += data;
  fixed(r, masked(crc32c(data.data(), data.size())));
  GAZE_CHECK(std::fwrite(r.data(), 1, r.size(), f_) == r.size() && std::fflush(f_) == 0, DataError,
             "{}: cannot write the TensorBoard event file ({})", path_, std::strerror(errno));
}

}  // namespace gaze::train
