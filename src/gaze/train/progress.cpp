#include "gaze/train/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>

namespace gaze::train {

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, std::round(seconds)));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

Progress::Progress(std::FILE* out, int64_t total, int64_t epochs, int64_t log_every)
    : out_(out),
      tty_(::isatty(::fileno(out)) != 0),
      total_(total),
      epochs_(epochs),
      log_every_(std::max<int64_t>(1, log_every)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

std::string Progress::status(int64_t step, int64_t epoch, double lr) const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t done = step - first_step_;
  const double per_step = done > 0 ? elapsed / static_cast<double>(done) : 0.0;
  const double eta = per_step * static_cast<double>(std::max<int64_t>(0, total_ - step));
  const double tps = elapsed > 0 ? static_cast<double>(tokens_) / elapsed : 0.0;
  return fmt::format("epoch {}/{} step {}/{} loss {:.4f} lr {:.2e} {:.0f} tok/s ETA {}", epoch + 1,
                     epochs_, step, total_, avg_loss_, lr, tps, format_duration(eta));
}

void Progress::step(int64_t step, int64_t epoch, double loss, double lr, int64_t tokens) {
  if (first_step_ < 0) {
    first_step_ = step - 1;
    start_ = std::chrono::steady_clock::now();
  }
  avg_loss_ = seen_ == 0 ? loss : 0.95 * avg_loss_ + 0.05 * loss;
  ++seen_;
  tokens_ += tokens;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    // Redraw at most ten times a second.
    if (now - last_draw_ < std::chrono::milliseconds(100) && step != total_) return;
    last_draw_ = now;
    const double frac = total_ > 0 ? static_cast<double>(step) / static_cast<double>(total_) : 0;
    const int width = 20, filled = static_cast<int>(frac * width);
    last_line_ =
        fmt::format("[{}{}] {}", std::string(static_cast<size_t>(filled), '#'),
                    std::string(static_cast<size_t>(width - filled), '.'), status(step, epoch, lr));
    std::fprintf(out_, "\r\033[K%s", last_line_.c_str());
    std::fflush(out_);
  } else if (step % log_every_ == 0 || step == total_) {
    std::fprintf(out_, "%s\n", status(step, epoch, lr).c_str());
    std::fflush(out_);
  }
}

void Progress::message(const std::string& text) {
  if (tty_) {
    std::fprintf(out_, "\r\033[K%s\n%s", text.c_str(), last_line_.c_str());
  } else {
    std::fprintf(out_, "%s\n", text.c_str());
  }
  std::fflush(out_);
}

void Progress::transient(const std::string& text) {
  if (!tty_) return;
  std::fprintf(out_, "\r\033[K%s", text.c_str());
  std::fflush(out_);
}

void Progress::finish() {
  if (tty_ && !last_line_.empty()) std::fprintf(out_, "\n");
  std::fflush(out_);
}

}  // namespace gaze::train
