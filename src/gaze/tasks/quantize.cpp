#include "gaze/tasks/quantize.h"

#include <algorithm>
#include <filesystem>

#include "gaze/core/error.h"
#include "gaze/io/checkpoint.h"
#include "gaze/io/files.h"
#include "gaze/nn/precision.h"
#include "gaze/ops/lowp.h"
#include "gaze/tasks/task.h"

namespace gaze::tasks {
namespace fs = std::filesystem;

QuantizeReport quantize_model(const std::string& dir_in, const std::string& out,
                              const QuantizeOptions& o) {
  GAZE_CHECK(o.precision != Precision::fp32, DataError,
             "gaze quantize: --precision must be bf16 or int8 (fp32 is what training writes)");
  const std::string dir = resolve_model_dir(dir_in);
  std::error_code ec;
  GAZE_CHECK(!fs::equivalent(dir, out, ec), DataError,
             "{}: the output folder is the model folder itself; quantize into a new folder (the "
             "float32 weights would be lost)",
             out);
  // The folder's files are copied into the new one: it may not lie inside the folder itself.
  const fs::path src_abs = fs::weakly_canonical(dir, ec), out_abs = fs::weakly_canonical(out, ec);
  const auto [end, rest] =
      std::mismatch(src_abs.begin(), src_abs.end(), out_abs.begin(), out_abs.end());
  GAZE_CHECK(end != src_abs.end(), DataError,
             "{}: the output folder lies inside the model folder {}; choose a folder outside it",
             out, dir);
  GAZE_CHECK(o.overwrite || !fs::exists(out, ec), DataError,
             "{}: already exists (pass --overwrite to replace a gaze model folder there)", out);
  io::check_checkpoint_target(out);
  // Converted without a hardware check: writing int8 or bf16 needs no special instructions.
  std::unique_ptr<Predictor> p = load_predictor(dir, {.precision = Precision::fp32});
  nn::set_precision(p->module(), o.precision);
  QuantizeReport r;
  for (const auto& [name, w] : p->module().named_matmul_weights())
    r.matrices += weight_lowp(w) != nullptr;  // views of larger tensors stay float32
  GAZE_CHECK(r.matrices > 0, DataError, "{}: the model has no matrices to quantize", dir);
  const fs::path src(dir);
  const std::string config = io::read_file((src / "config.json").string(), io::kMaxMetadataBytes);
  io::save_checkpoint(out, p->module(), config, nullptr, [&](const std::string& tmp) {
    // Everything else of the folder (tokenizer, labels, task.json) as it is.
    for (const auto& e : fs::directory_iterator(src)) {
      const std::string name = e.path().filename().string();
      if (name == "config.json" || name == "model.safetensors" || name == "training.safetensors" ||
          name.starts_with("."))
        continue;
      std::error_code cec;
      fs::copy(e.path(), fs::path(tmp) / name, fs::copy_options::recursive, cec);
      GAZE_CHECK(!cec, DataError, "{}: cannot copy into {} ({})", e.path().string(), tmp,
                 cec.message());
    }
  });
  r.bytes_before = static_cast<int64_t>(fs::file_size(src / "model.safetensors", ec));
  r.bytes_after = static_cast<int64_t>(fs::file_size(fs::path(out) / "model.safetensors", ec));
  return r;
}

}  // namespace gaze::tasks
