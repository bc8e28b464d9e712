#include "gaze/data/batching.h"

#include <algorithm>
#include <numeric>

#include "gaze/core/error.h"

namespace gaze::data {
namespace {

// A uniform permutation of [0, n) from the generator (Fisher-Yates on its 32-bit words).
std::vector<int64_t> permutation(int64_t n, Generator& g) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  if (n < 2) return p;
  std::vector<double> u(static_cast<size_t>(n));
  g.uniform(u.data(), n, 0.0, 1.0);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = std::min<int64_t>(i, static_cast<int64_t>(u[static_cast<size_t>(i)] * (i + 1)));
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

}  // namespace

std::vector<std::vector<int64_t>> make_batches(const std::vector<int64_t>& lengths,
                                               const BatchOptions& o, Generator* gen) {
  GAZE_CHECK(o.max_tokens > 0 && o.max_examples >= 0, DataError,
             "batching: max_tokens must be > 0 and max_examples >= 0");
  GAZE_CHECK(!o.shuffle || gen, ValueError, "batching: shuffling needs a generator");
  const int64_t n = static_cast<int64_t>(lengths.size());
  // Shuffle first, then sort stably by length: equal lengths stay in random order.
  std::vector<int64_t> order(static_cast<size_t>(n));
  if (o.shuffle)
    order = permutation(n, *gen);
  else
    std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return lengths[static_cast<size_t>(a)] < lengths[static_cast<size_t>(b)];
  });
  std::vector<std::vector<int64_t>> batches;
  std::vector<int64_t> cur;
  int64_t longest = 0;
  for (const int64_t i : order) {
    const int64_t len = std::max<int64_t>(1, lengths[static_cast<size_t>(i)]);
    const int64_t grown = std::max(longest, len) * static_cast<int64_t>(cur.size() + 1);
    const bool full = (grown > o.max_tokens) ||
                      (o.max_examples > 0 && static_cast<int64_t>(cur.size()) >= o.max_examples);
    if (!cur.empty() && full) {
      batches.push_back(std::move(cur));
      cur.clear();
      longest = 0;
    }
    cur.push_back(i);  // an example longer than max_tokens still gets a batch of its own
    longest = std::max(longest, len);
  }
  if (!cur.empty()) batches.push_back(std::move(cur));
  if (o.shuffle) {
    const std::vector<int64_t> p = permutation(static_cast<int64_t>(batches.size()), *gen);
    std::vector<std::vector<int64_t>> shuffled;
    for (const int64_t k : p) shuffled.push_back(std::move(batches[static_cast<size_t>(k)]));
    return shuffled;
  }
  return batches;
}

}  // namespace gaze::data
