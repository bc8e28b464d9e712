// The `gaze` command line: one function per subcommand, each registering its options on a CLI11
// subcommand and returning the action to run once the arguments are parsed.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include "gaze/core/precision.h"
#include "gaze/decode/search.h"

namespace gaze::cli {

using Action = std::function<int()>;  // returns the exit code

// stdout or stdin failed (a full disk, a closed pipe, an I/O error): main prints "gaze: write
// error: ..." / "gaze: read error: ..." and exits 1, as coreutils do, instead of reporting success
// with the output lost.
class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Flushes stdout; IoError (with the system's reason) if anything written to it was lost.
void check_stdout();

// The most bytes of one input line gaze keeps (1 MiB); the rest of the line is skipped without
// being held in memory. Models read at most max_length tokens of it anyway.
inline constexpr size_t kMaxLineBytes = size_t{1} << 20;

// Lines of a file descriptor (stdin), read with read(2) so that a failed read is an IoError rather
// than the end of the input (iostreams cannot tell the two apart).
class LineReader {
 public:
  explicit LineReader(int fd = 0, std::string name = "stdin") : fd_(fd), name_(std::move(name)) {}
  // The next line (without '\n' or a trailing '\r'), cut to kMaxLineBytes at a character
  // boundary; false at the end of the input.
  bool next(std::string& line);
  // Whether next() can return without waiting for the writer: a whole line is buffered, or the
  // input has more bytes (or its end) at hand. Piped input is read in batches; a person typing is
  // answered line by line.
  bool ready() const;

 private:
  bool fill();  // more bytes into buf_; false at the end
  int fd_;
  std::string name_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
};

class FieldFlags;
// --nbest N asks a beam search for N hypotheses: more than --beam-size given beside it is an error;
// more than the model's own beam widens it to N, with a one-line notice.
void check_nbest(const FieldFlags& flags, decode::SearchOptions& search);

Action add_train(CLI::App& app);
Action add_eval(CLI::App& app);
Action add_predict(CLI::App& app);
Action add_translate(CLI::App& app);
Action add_explain(CLI::App& app);
Action add_embed(CLI::App& app);
Action add_import(CLI::App& app);
Action add_serve(CLI::App& app);
Action add_quantize(CLI::App& app);
Action add_report(CLI::App& app);

// The required --model option of the commands that load a trained model (the folder is resolved
// by tasks::resolve_model_dir).
inline CLI::Option* add_model_option(
    CLI::App& app, std::string& model,
    const std::string& help = "a model folder (a run folder, or its best/ or last/)") {
  return app.add_option("--model", model, help)->required();
}

// --precision of the commands that run a model: the precision its matrices multiply in
// (tasks::LoadOptions::precision; left out, the model folder's own).
inline CLI::Option* add_precision_option(CLI::App& app, std::optional<Precision>& precision) {
  return app
      .add_option_function<std::string>(
          "--precision",
          [&precision](const std::string& s) { precision = *enum_from_name<Precision>(s); },
          "fp32, bf16 or int8: the precision of the model's matrix products (default: the model "
          "folder's own; a CPU without bf16/int8 instructions runs fp32 and says so)")
      ->check(CLI::IsMember(enum_name_list<Precision>()));
}

}  // namespace gaze::cli
