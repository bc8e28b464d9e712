// Training progress for people: on a terminal, one status line redrawn in place (epoch, step,
// bar, ETA, loss, learning rate, tokens/s); otherwise, plain log lines every `log_every` steps.
// Messages (validations, checkpoints) are printed on their own lines either way.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace gaze::train {

class Progress {
 public:
  Progress(std::FILE* out, int64_t total_steps, int64_t epochs, int64_t log_every);
  // After each step: the running loss is an exponential average of the step losses.
  void step(int64_t step, int64_t epoch, double loss, double lr, int64_t tokens);
  // A line of its own (the status line is redrawn after it).
  void message(const std::string& text);
  // On a terminal, `text` in place of the status line until the next step redraws it (e.g.
  // "validating ..." while a translator decodes its dev set); nothing in a log file.
  void transient(const std::string& text);
  void finish();
  bool interactive() const { return tty_; }

 private:
  std::string status(int64_t step, int64_t epoch, double lr) const;
  std::FILE* out_;
  bool tty_;
  int64_t total_, epochs_, log_every_;
  double avg_loss_ = 0;
  int64_t seen_ = 0, tokens_ = 0, first_step_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::string last_line_;
};

std::string format_duration(double seconds);  // "1:02:03" or "4:05"

}  // namespace gaze::train
