#include "gaze/core/rng.h"

#include <cmath>
#include <numbers>

#include "gaze/core/threads.h"

namespace gaze {

std::array<uint32_t, 4> philox4x32(uint64_t seed, uint64_t stream, uint64_t block) {
  // Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC 2011): 10 rounds, these
  // multipliers and Weyl key increments are the published constants.
  constexpr uint32_t kM0 = 0xD2511F53, kM1 = 0xCD9E8D57, kW0 = 0x9E3779B9, kW1 = 0xBB67AE85;
  uint32_t c0 = static_cast<uint32_t>(block), c1 = static_cast<uint32_t>(block >> 32);
  uint32_t c2 = static_cast<uint32_t>(stream), c3 = static_cast<uint32_t>(stream >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0, p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += kW0;
    k1 += kW1;
  }
  return {c0, c1, c2, c3};
}

namespace {

constexpr int64_t kGrainBlocks = 4096;

// Calls fill(block_words, i0) for every block; block b covers outputs [b*per_block, ...).
template <typename F>
void for_blocks(Generator& g, int64_t n, int per_block, F&& fill) {
  const int64_t blocks = (n + per_block - 1) / per_block;
  const uint64_t first = g.reserve(static_cast<uint64_t>(blocks));
  const uint64_t seed = g.seed(), stream = g.stream();
  parallel_for(0, blocks, kGrainBlocks, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) fill(philox4x32(seed, stream, first + b), b * per_block);
  });
}

}  // namespace

template <typename T>
void Generator::uniform(T* out, int64_t n, double lo, double hi) {
  const double span = hi - lo;
  if constexpr (sizeof(T) == 4) {
    for_blocks(*this, n, 4, [&](const std::array<uint32_t, 4>& w, int64_t i0) {
      for (int j = 0; j < 4 && i0 + j < n; ++j)
        out[i0 + j] = static_cast<T>(lo + span * uniform_float(w[j]));
    });
  } else {
    for_blocks(*this, n, 2, [&](const std::array<uint32_t, 4>& w, int64_t i0) {
      for (int j = 0; j < 2 && i0 + j < n; ++j)
        out[i0 + j] = static_cast<T>(lo + span * uniform_double(w[2 * j], w[2 * j + 1]));
    });
  }
}

template <typename T>
void Generator::normal(T* out, int64_t n, double mean, double std) {
  // Box-Muller on pairs of uniforms; u1 is taken in (0, 1] so log(u1) is finite.
  constexpr double kTwoPi = 2 * std::numbers::pi;
  if constexpr (sizeof(T) == 4) {
    for_blocks(*this, n, 4, [&](const std::array<uint32_t, 4>& w, int64_t i0) {
      for (int pair = 0; pair < 2; ++pair) {
        const double u1 = 1.0 - uniform_float(w[2 * pair]), u2 = uniform_float(w[2 * pair + 1]);
        const double r = std::sqrt(-2.0 * std::log(u1)), th = kTwoPi * u2;
        const int64_t i = i0 + 2 * pair;
        if (i < n) out[i] = static_cast<T>(mean + std * r * std::cos(th));
        if (i + 1 < n) out[i + 1] = static_cast<T>(mean + std * r * std::sin(th));
      }
    });
  } else {
    for_blocks(*this, n, 2, [&](const std::array<uint32_t, 4>& w, int64_t i0) {
      const double u1 = 1.0 - uniform_double(w[0], w[1]), u2 = uniform_double(w[2], w[3]);
      const double r = std::sqrt(-2.0 * std::log(u1)), th = kTwoPi * u2;
      out[i0] = static_cast<T>(mean + std * r * std::cos(th));
      if (i0 + 1 < n) out[i0 + 1] = static_cast<T>(mean + std * r * std::sin(th));
    });
  }
}

template <typename T>
void Generator::bernoulli(T* out, int64_t n, double p) {
  for_blocks(*this, n, 4, [&](const std::array<uint32_t, 4>& w, int64_t i0) {
    for (int j = 0; j < 4 && i0 + j < n; ++j)
      out[i0 + j] = static_cast<T>(static_cast<double>(uniform_float(w[j])) < p ? 1 : 0);
  });
}

template void Generator::uniform<float>(float*, int64_t, double, double);
template void Generator::uniform<double>(double*, int64_t, double, double);
template void Generator::normal<float>(float*, int64_t, double, double);
template void Generator::normal<double>(double*, int64_t, double, double);
template void Generator::bernoulli<float>(float*, int64_t, double);
template void Generator::bernoulli<double>(double*, int64_t, double);

namespace {
// The explicit RNG settings (the brief's one allowed kind of global mutable state).
struct DefaultGenerators {
  Generator g[3] = {Generator(0, 0), Generator(0, 1), Generator(0, 2)};
};
DefaultGenerators& defaults() {
  static DefaultGenerators d;
  return d;
}
}  // namespace

Generator& default_generator(RngPurpose p) {
  return defaults().g[static_cast<int>(p)];
}

void manual_seed(uint64_t seed) {
  for (auto& g : defaults().g) g.manual_seed(seed);
}

}  // namespace gaze
