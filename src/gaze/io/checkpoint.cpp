#include "gaze/io/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "gaze/core/error.h"
#include "gaze/core/storage.h"
#include "gaze/core/version.h"
#include "gaze/io/files.h"
#include "gaze/io/safetensors.h"
#include "gaze/nn/module.h"
#include "gaze/ops/lowp.h"

namespace gaze::io {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kModel = "model.safetensors";
constexpr const char* kTraining = "training.safetensors";
constexpr const char* kConfig = "config.json";
constexpr const char* kFormat = "gaze-checkpoint-1";
// Written first into every checkpoint directory: what marks a directory as one gaze may replace.
constexpr const char* kMarker = ".gaze-checkpoint";

// Whether `path` is a safetensors file gaze wrote for a checkpoint: its header's metadata says
// format gaze-checkpoint-1 (only the header is read).
bool has_gaze_format(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char len[8];
  std::string header;
  if (std::fread(len, 1, 8, f) == 8) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
    if (n <= (uint64_t{1} << 26)) {  // a checkpoint's header is far smaller
      header.resize(static_cast<size_t>(n));
      if (std::fread(header.data(), 1, header.size(), f) != header.size()) header.clear();
    }
  }
  std::fclose(f);
  const json j = json::parse(header, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("__metadata__") && j["__metadata__"].is_object() &&
         j["__metadata__"].value("format", "") == kFormat;
}

// A directory gaze wrote as a checkpoint: its marker, or (from before markers) a model.safetensors
// of gaze's format; or an empty one (a save killed before it wrote the marker).
bool is_checkpoint_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec) &&
         (fs::exists(p / kMarker, ec) || fs::is_empty(p, ec) || has_gaze_format(p / kModel));
}

// The marker goes in first, by a plain create: from then on the directory is recognisably gaze's.
void write_marker(const fs::path& dir) {
  const fs::path path = dir / kMarker;
  std::FILE* f = std::fopen(path.c_str(), "w");
  const bool ok = f && std::fputs(kFormat, f) >= 0;
  GAZE_CHECK(f && std::fclose(f) == 0 && ok, DataError, "{}: cannot write ({})", path.string(),
             std::strerror(errno));
}

bool occupied(const fs::path& p) {
  std::error_code ec;
  return fs::symlink_status(p, ec).type() != fs::file_type::not_found;
}

// Removes a checkpoint directory gaze left at `p`; anything else there is refused, never removed.
void remove_leftover(const fs::path& p, const std::string& target) {
  if (!occupied(p)) return;
  GAZE_CHECK(is_checkpoint_dir(p), DataError,
             "{}: exists and is not a gaze checkpoint; refusing to remove it to save {} (move it "
             "away or save elsewhere)",
             p.string(), target);
  std::error_code ec;
  fs::remove_all(p, ec);
  GAZE_CHECK(!ec, DataError, "{}: cannot remove ({})", p.string(), ec.message());
}

// Makes the renames in `dir` durable.
void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

json rng_json(const Generator::State& s) {
  return {{"seed", s.seed}, {"stream", s.stream}, {"offset", s.offset}};
}

Generator::State rng_from(const json& j, const std::string& where) {
  try {
    return {j.at("seed").get<uint64_t>(), j.at("stream").get<uint64_t>(),
            j.at("offset").get<uint64_t>()};
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: invalid generator state ({})", where, e.what()));
  }
}

// Test hooks (GAZE_FAULT_INJECT): checkpoint_save kills the process half-way through a save, so
// tests can check that the previous checkpoint survives a crash; no_rename_exchange takes the path
// of file systems without RENAME_EXCHANGE.
bool fault(const char* name) {
  const char* f = std::getenv("GAZE_FAULT_INJECT");
  return f && std::string(f) == name;
}
void maybe_crash() {
  if (fault("checkpoint_save")) std::raise(SIGKILL);
}
int exchange(const fs::path& a, const fs::path& b) {
  if (fault("no_rename_exchange")) {
    errno = EINVAL;
    return -1;
  }
  return ::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE);
}

}  // namespace

TrainingState capture_training_state(const optim::Optimizer& opt, const optim::LRScheduler* sched,
                                     const std::string& progress) {
  TrainingState s;
  s.optimizer = opt.name();
  s.optimizer_steps = opt.steps();
  s.lr = opt.lr();
  s.optimizer_tensors = opt.state_tensors();
  s.scheduler_step = sched ? sched->last_step() : 0;
  s.rng_init = default_generator(RngPurpose::init).state();
  s.rng_dropout = default_generator(RngPurpose::dropout).state();
  s.rng_data = default_generator(RngPurpose::data).state();
  s.progress = progress;
  return s;
}

void restore_training_state(const TrainingState& s, optim::Optimizer& opt,
                            optim::LRScheduler* sched) {
  GAZE_CHECK(s.optimizer == opt.name(), DataError, "checkpoint holds {} state but the run uses {}",
             s.optimizer, opt.name());
  opt.load_state(s.optimizer_tensors, s.optimizer_steps);
  if (sched) sched->set_last_step(s.scheduler_step);
  opt.set_lr(s.lr);
  default_generator(RngPurpose::init).set_state(s.rng_init);
  default_generator(RngPurpose::dropout).set_state(s.rng_dropout);
  default_generator(RngPurpose::data).set_state(s.rng_data);
}

namespace {

constexpr const char* kScaleSuffix = "_scale";
constexpr const char* kAverage = "average.";  // training-state tensors of the weight average

// A model's state dict as model.safetensors stores it: reduced-precision matrices narrowed.
struct StoredWeights {
  NamedTensors tensors;
  std::map<std::string, StoreAs> store_as;
  std::map<std::string, std::string> metadata{{"format", kFormat},
                                              {"gaze_version", std::string(version())},
                                              {"gaze_commit", std::string(git_commit())}};
};

StoredWeights stored_weights(const nn::Module& model) {
  StoredWeights out;
  json names = json::array();
  std::string precision;
  for (const auto& [name, t] : model.state_dict()) {
    const auto q = weight_lowp(t);
    if (!q || t.impl().offset != 0 || t.numel() != q->rows * q->cols) {
      out.tensors.emplace_back(name, t);
      continue;
    }
    names.push_back(name);
    GAZE_CHECK(precision.empty() || precision == enum_name(q->precision), ValueError,
               "save_checkpoint: the model's matrices are in different precisions ({} and {}); "
               "a checkpoint stores one",
               precision, enum_name(q->precision));
    precision = enum_name(q->precision);
    if (q->precision == Precision::bf16) {
      out.tensors.emplace_back(name, t);  // its values are the bfloat16 numbers
      out.store_as[name] = StoreAs::bf16;
    } else {
      Tensor v = Tensor::empty(t.shape(), DType::i64);
      std::copy(q->q.begin(), q->q.end(), v.data<int64_t>());
      out.tensors.emplace_back(name, v);
      out.store_as[name] = StoreAs::i8;
      out.tensors.emplace_back(name + kScaleSuffix, Tensor::from_vector(q->scale, Shape{q->rows}));
    }
  }
  if (!names.empty()) {
    out.metadata["precision"] = precision;
    out.metadata["quantized"] = names.dump();
  }
  return out;
}

// Undoes stored_weights on a file's tensors: the matrices its metadata lists become float tensors
// in `tensors` (their values deferred, made from `lowp` when read) and reduced-precision ones in
// `lowp`. DataError naming `path` for anything amiss.
void decode_lowp(const std::string& path, const std::map<std::string, std::string>& metadata,
                 NamedTensors& tensors, std::map<std::string, Int8Tensor>& int8,
                 std::map<std::string, Bf16Tensor>& bf16,
                 std::map<std::string, std::shared_ptr<const kernels::LowpWeight>>& lowp) {
  const auto pit = metadata.find("precision"), nit = metadata.find("quantized");
  if (pit == metadata.end() && nit == metadata.end()) return;
  GAZE_CHECK(pit != metadata.end() && nit != metadata.end(), DataError,
             "{}: the metadata must give both \"precision\" and \"quantized\"", path);
  const auto p = enum_from_name<Precision>(pit->second);
  GAZE_CHECK(p && *p != Precision::fp32, DataError,
             "{}: metadata precision '{}' is not one of 'bf16', 'int8'", path, pit->second);
  const json names = json::parse(nit->second, nullptr, /*allow_exceptions=*/false);
  GAZE_CHECK(names.is_array(), DataError,
             "{}: metadata \"quantized\" must be a JSON list of tensor names", path);
  // One index of the file's tensors (a hostile header may list a million of them).
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < tensors.size(); ++i) index.emplace(tensors[i].first, i);
  auto find_tensor = [&](const std::string& name) -> Tensor* {
    const auto it = index.find(name);
    return it == index.end() ? nullptr : &tensors[it->second].second;
  };
  std::unordered_set<std::string> scales;  // removed at the end: they are not parameters
  for (const json& jn : names) {
    GAZE_CHECK(jn.is_string(), DataError, "{}: metadata \"quantized\" holds a non-string", path);
    const std::string name = jn.get<std::string>();
    GAZE_CHECK(!lowp.count(name), DataError, "{}: '{}' is listed twice in \"quantized\"", path,
               name);
    // int8 values come as their bytes (Int8Tensor), bf16 ones as their bits (Bf16Tensor),
    // everything else as a tensor.
    Tensor* t = find_tensor(name);
    const auto i8 = int8.find(name);
    const auto b16 = bf16.find(name);
    const Shape shape = t                   ? t->shape()
                        : i8 != int8.end()  ? i8->second.shape
                        : b16 != bf16.end() ? b16->second.shape
                                            : Shape();
    GAZE_CHECK(
        (t || i8 != int8.end() || b16 != bf16.end()) && shape.ndim() == 2 && shape.numel() > 0,
        DataError, "{}: quantized tensor '{}' is missing or not a non-empty matrix", path, name);
    kernels::LowpWeight q;
    q.precision = *p;
    q.rows = shape[0], q.cols = shape[1];
    const size_t n = static_cast<size_t>(shape.numel());
    if (*p == Precision::bf16) {
      if (b16 != bf16.end()) {  // as gaze quantize stores them
        q.bf16 = std::move(b16->second.bits);
        bf16.erase(b16);
      } else {  // float32 values that are bfloat16 numbers
        GAZE_CHECK(t && t->dtype() == DType::f32, DataError, "{}: '{}' must be BF16", path, name);
        q.bf16.resize(n);
        const float* v = t->data<float>();
        for (size_t i = 0; i < n; ++i) {
          uint32_t bits;
          std::memcpy(&bits, v + i, 4);
          GAZE_CHECK((bits & 0xffffu) == 0, DataError, "{}: '{}' must be BF16", path, name);
          q.bf16[i] = static_cast<uint16_t>(bits >> 16);
        }
      }
    } else {
      GAZE_CHECK(i8 != int8.end(), DataError, "{}: '{}' must be I8", path, name);
      q.q = std::move(i8->second.values);
      int8.erase(i8);
      GAZE_CHECK(std::find(q.q.begin(), q.q.end(), int8_t{-128}) == q.q.end(), DataError,
                 "{}: '{}' holds -128, outside the symmetric int8 range [-127, 127]", path, name);
      const std::string sname = name + kScaleSuffix;
      const Tensor* s = find_tensor(sname);
      GAZE_CHECK(s && s->dtype() == DType::f32 && s->shape() == Shape{q.rows}, DataError,
                 "{}: '{}' needs its scales '{}' as float32 [{}]", path, name, sname, q.rows);
      q.scale = s->to_vector<float>();
      for (const float x : q.scale)  // x * 127 must stay finite: the largest value it stands for
        GAZE_CHECK(std::isfinite(x * 127.0f) && x >= 0, DataError,
                   "{}: '{}' holds the scale {}; scales must be finite and non-negative", path,
                   sname, x);
      scales.insert(sname);
    }
    auto qp = std::make_shared<const kernels::LowpWeight>(std::move(q));
    lowp.emplace(name, qp);
    if (t && t->dtype() == DType::f32) continue;  // float32 bf16 numbers: t holds the values
    // The matrix's float values are deferred: made from qp only if something reads them
    // (training, gradients, a tied embedding). Made at load, an int8 folder's took a third of
    // the time a quantized translator took to load and four bytes a weight more than its values.
    const Shape shape2{qp->rows, qp->cols};
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = Storage::deferred(
        static_cast<size_t>(shape2.numel()) * sizeof(float),
        [qp](void* dst) { kernels::dequantize_weight(*qp, static_cast<float*>(dst)); });
    impl->shape = shape2;
    impl->dtype = DType::f32;
    const Tensor f(std::move(impl));
    if (t) {
      *t = f;
    } else {
      tensors.emplace_back(name, f);
      index.emplace(name, tensors.size() - 1);
    }
  }
  std::erase_if(tensors, [&](const auto& kv) { return scales.count(kv.first) > 0; });
}

}  // namespace

void save_checkpoint(const std::string& dir_in, const nn::Module& model,
                     const std::string& config_json, const TrainingState* training,
                     const std::function<void(const std::string&)>& write_extra) {
  const fs::path dir = fs::path(dir_in).lexically_normal();
  GAZE_CHECK(!dir.empty() && dir.filename() != "" && dir.filename() != ".", ValueError,
             "save_checkpoint: '{}' is not a usable directory name", dir_in);
  json cfg;
  try {
    cfg = json::parse(config_json);
  } catch (const json::exception& e) {
    throw ValueError(
        fmt::format("save_checkpoint: the model config is not valid JSON ({})", e.what()));
  }
  const fs::path tmp = dir.string() + ".tmp", old = dir.string() + ".old";
  // Left by a save interrupted between the fallback's two renames: old is the last checkpoint.
  std::error_code ec;
  if (!occupied(dir) && is_checkpoint_dir(old)) fs::rename(old, dir, ec);
  check_checkpoint_target(dir.string());
  remove_leftover(tmp, dir.string());  // a stale one from an interrupted save
  remove_leftover(old, dir.string());
  fs::create_directories(tmp, ec);
  GAZE_CHECK(!ec, DataError, "{}: cannot create ({})", tmp.string(), ec.message());

  write_marker(tmp);
  write_file_atomic((tmp / kConfig).string(), cfg.dump(2) + "\n");
  const StoredWeights w = stored_weights(model);
  save_safetensors((tmp / kModel).string(), w.tensors, w.metadata, w.store_as);
  maybe_crash();
  if (training) {
    const json meta = {{"optimizer", training->optimizer},
                       {"optimizer_steps", training->optimizer_steps},
                       {"lr", training->lr},
                       {"scheduler_step", training->scheduler_step},
                       {"rng",
                        {{"init", rng_json(training->rng_init)},
                         {"dropout", rng_json(training->rng_dropout)},
                         {"data", rng_json(training->rng_data)}}},
                       {"progress", json::parse(training->progress)},
                       {"average_updates", training->average_updates}};
    NamedTensors tensors = training->optimizer_tensors;
    for (const auto& [k, v] : training->average_tensors) tensors.emplace_back(kAverage + k, v);
    save_safetensors((tmp / kTraining).string(), tensors,
                     {{"format", kFormat},
                      {"gaze_version", std::string(version())},
                      {"gaze_commit", std::string(git_commit())},
                      {"training", meta.dump()}});
  }
  if (write_extra) write_extra(tmp.string());
  sync_directory(tmp);
  const fs::path parent = dir.parent_path();
  if (occupied(dir)) {
    // One atomic step: tmp and dir trade places, so dir is complete before and after.
    if (exchange(tmp, dir) == 0) {
      sync_directory(parent);
      fs::remove_all(tmp, ec);  // now the previous checkpoint
      return;
    }
    GAZE_CHECK(errno == EINVAL || errno == ENOSYS || errno == ENOTSUP, DataError,
               "{}: cannot replace the previous checkpoint ({})", dir.string(),
               std::strerror(errno));
    // No RENAME_EXCHANGE here: the previous checkpoint stays complete as dir.old until the new
    // one is in place (load_checkpoint and the next save recover from a crash in between).
    fs::rename(dir, old, ec);
    GAZE_CHECK(!ec, DataError, "{}: cannot replace the previous checkpoint ({})", dir.string(),
               ec.message());
  }
  fs::rename(tmp, dir, ec);
  GAZE_CHECK(!ec, DataError, "{}: cannot move the new checkpoint in place ({})", dir.string(),
             ec.message());
  sync_directory(parent);
  fs::remove_all(old, ec);
}

void check_checkpoint_target(const std::string& dir) {
  GAZE_CHECK(!occupied(dir) || is_checkpoint_dir(dir), DataError,
             "{}: exists and is not a gaze checkpoint; refusing to replace it (save the checkpoint "
             "into a folder of its own, e.g. RUN/last)",
             fs::path(dir).lexically_normal().string());
}

bool has_training_state(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / kTraining, ec);
}

void remove_checkpoint(const std::string& dir_in) {
  const fs::path dir = fs::path(dir_in).lexically_normal();
  const std::vector<fs::path> paths = {dir, dir.string() + ".tmp", dir.string() + ".old"};
  for (const auto& p : paths)  // all checked before any is removed
    GAZE_CHECK(!occupied(p) || is_checkpoint_dir(p), DataError,
               "{}: exists and is not a gaze checkpoint; refusing to remove it", p.string());
  for (const auto& p : paths) remove_leftover(p, dir.string());
}

std::optional<std::string> find_checkpoint(const std::string& dir_in) {
  const fs::path dir = fs::path(dir_in).lexically_normal();
  std::error_code ec;
  if (fs::exists(dir / kModel, ec)) return dir.string();
  const fs::path old = dir.string() + ".old";
  if (!occupied(dir) && fs::exists(old / kModel, ec)) return old.string();
  return std::nullopt;
}

Checkpoint load_checkpoint(const std::string& dir_in) {
  fs::path dir = fs::path(dir_in).lexically_normal();
  if (const auto found = find_checkpoint(dir_in)) dir = *found;
  GAZE_CHECK(fs::is_directory(dir), DataError, "{}: no such checkpoint directory", dir_in);
  GAZE_CHECK(fs::exists(dir / kModel), DataError, "{}: missing {} (not a gaze checkpoint?)", dir_in,
             kModel);
  Checkpoint ck;
  if (fs::exists(dir / kConfig)) {
    ck.config_json = read_file((dir / kConfig).string(), kMaxMetadataBytes);
    try {
      [[maybe_unused]] const json parsed = json::parse(ck.config_json);
    } catch (const json::exception& e) {
      throw DataError(fmt::format("{}: not valid JSON ({})", (dir / kConfig).string(), e.what()));
    }
  }
  {
    SafetensorsFile f =
        load_safetensors((dir / kModel).string(), {.keep_int8 = true, .keep_bf16 = true});
    decode_lowp((dir / kModel).string(), f.metadata, f.tensors, f.int8, f.bf16, ck.lowp);
    // BF16 tensors that are not quantized weights: float32, as every other reader sees them.
    for (auto& [name, t] : f.bf16) {
      Tensor w = Tensor::empty(t.shape, DType::f32);
      kernels::bf16_to_float(t.bits.data(), w.data<float>(), t.shape.numel());
      f.tensors.emplace_back(name, w);
    }
    // I8 tensors that are not quantized weights: as every other reader sees them, int64.
    for (auto& [name, t] : f.int8) {
      Tensor w = Tensor::empty(t.shape, DType::i64);
      std::copy(t.values.begin(), t.values.end(), w.data<int64_t>());
      f.tensors.emplace_back(name, w);
    }
    ck.model = std::move(f.tensors);
  }
  if (fs::exists(dir / kTraining)) {
    const std::string path = (dir / kTraining).string();
    SafetensorsFile f = load_safetensors(path);
    auto it = f.metadata.find("training");
    GAZE_CHECK(it != f.metadata.end(), DataError, "{}: no \"training\" metadata", path);
    TrainingState s;
    try {
      const json m = json::parse(it->second);
      s.optimizer = m.at("optimizer").get<std::string>();
      s.optimizer_steps = m.at("optimizer_steps").get<int64_t>();
      s.lr = m.at("lr").get<double>();
      s.scheduler_step = m.at("scheduler_step").get<int64_t>();
      s.rng_init = rng_from(m.at("rng").at("init"), path);
      s.rng_dropout = rng_from(m.at("rng").at("dropout"), path);
      s.rng_data = rng_from(m.at("rng").at("data"), path);
      s.progress = m.at("progress").dump();
      s.average_updates = m.value("average_updates", int64_t{0});
    } catch (const json::exception& e) {
      throw DataError(fmt::format("{}: invalid training metadata ({})", path, e.what()));
    }
    for (auto& [k, v] : f.tensors) {
      if (k.starts_with(kAverage))
        s.average_tensors.emplace_back(k.substr(std::string_view(kAverage).size()), std::move(v));
      else
        s.optimizer_tensors.emplace_back(k, std::move(v));
    }
    GAZE_CHECK(s.average_updates >= 0, DataError,
               "{}: the weight average has {} updates (a count >= 0 expected)", path,
               s.average_updates);
    ck.training = std::move(s);
  }
  return ck;
}

}  // namespace gaze::io
