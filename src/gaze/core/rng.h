// Random numbers: Philox4x32-10, a counter-based generator. Value i of a draw depends only on
// (seed, stream, offset + i), so streams are independent and results don't depend on thread count.
#pragma once

#include <array>
#include <cstdint>

namespace gaze {

// One Philox block: four 32-bit words for (key = seed, counter = {block, stream}).
std::array<uint32_t, 4> philox4x32(uint64_t seed, uint64_t stream, uint64_t block);

// Uniform in [0, 1) from 24 (float) or 53 (double) random bits.
inline float uniform_float(uint32_t u) {
  return static_cast<float>(u >> 8) * 0x1.0p-24f;
}
inline double uniform_double(uint32_t hi, uint32_t lo) {
  return static_cast<double>(((static_cast<uint64_t>(hi) << 32) | lo) >> 11) * 0x1.0p-53;
}

class Generator {
 public:
  struct State {
    uint64_t seed = 0, stream = 0, offset = 0;
    bool operator==(const State&) const = default;
  };

  explicit Generator(uint64_t seed = 0, uint64_t stream = 0) : s_{seed, stream, 0} {}

  // Claims `blocks` consecutive Philox blocks and returns the first; kernels then fill in parallel.
  uint64_t reserve(uint64_t blocks) {
    const uint64_t first = s_.offset;
    s_.offset += blocks;
    return first;
  }

  template <typename T>
  void uniform(T* out, int64_t n, double lo, double hi);
  template <typename T>
  void normal(T* out, int64_t n, double mean, double std);
  template <typename T>
  void bernoulli(T* out, int64_t n, double p);  // 1 with probability p, else 0

  uint64_t seed() const { return s_.seed; }
  uint64_t stream() const { return s_.stream; }
  const State& state() const { return s_; }
  void set_state(const State& s) { s_ = s; }
  void manual_seed(uint64_t seed) { s_ = {seed, s_.stream, 0}; }

 private:
  State s_;
};

// The three generators gaze draws from, one per purpose, so that e.g. adding dropout does not
// change weight initialisation. Their states go into checkpoints.
enum class RngPurpose : int { init = 0, dropout = 1, data = 2 };
Generator& default_generator(RngPurpose p);
// Reseeds all default generators (each keeps its own stream).
void manual_seed(uint64_t seed);

}  // namespace gaze
