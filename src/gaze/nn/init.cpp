#include "gaze/nn/init.h"

#include <cmath>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/ops/random.h"

namespace gaze::nn::init {
namespace {
thread_local bool skip_random = false;

Tensor fill_from(Tensor t, const Tensor& src) {
  NoGradGuard no_grad;
  t.copy_(src);
  return t;
}
}  // namespace

bool random_init_skipped() {
  return skip_random;
}

SkipRandomInitGuard::SkipRandomInitGuard() : previous_(skip_random) {
  skip_random = true;
}
SkipRandomInitGuard::~SkipRandomInitGuard() {
  skip_random = previous_;
}

std::pair<int64_t, int64_t> fans(const Tensor& t) {
  GAZE_CHECK(t.dim() >= 2, ValueError, "init: fan in and fan out need at least 2 dims, got {}",
             t.shape_str());
  int64_t field = 1;
  for (int i = 2; i < t.dim(); ++i) field *= t.size(i);
  return {t.size(1) * field, t.size(0) * field};
}

Tensor uniform_(Tensor t, double a, double b, Generator* gen) {
  return skip_random ? t : fill_from(t, uniform(t.shape(), a, b, t.dtype(), gen));
}
Tensor normal_(Tensor t, double mean, double std, Generator* gen) {
  return skip_random ? t : fill_from(t, normal(t.shape(), mean, std, t.dtype(), gen));
}
Tensor constant_(Tensor t, double value) {
  NoGradGuard no_grad;
  t.fill_(value);
  return t;
}
Tensor zeros_(Tensor t) {
  return constant_(t, 0.0);
}
Tensor ones_(Tensor t) {
  return constant_(t, 1.0);
}

Tensor xavier_uniform_(Tensor t, double gain, Generator* gen) {
  const auto [fi, fo] = fans(t);
  const double a = gain * std::sqrt(6.0 / static_cast<double>(fi + fo));
  return uniform_(t, -a, a, gen);
}

Tensor xavier_normal_(Tensor t, double gain, Generator* gen) {
  const auto [fi, fo] = fans(t);
  return normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fi + fo)), gen);
}

Tensor kaiming_uniform_(Tensor t, double a, Generator* gen) {
  const auto [fi, fo] = fans(t);
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = std::sqrt(3.0) * gain / std::sqrt(static_cast<double>(fi));
  return uniform_(t, -bound, bound, gen);
}

}  // namespace gaze::nn::init
