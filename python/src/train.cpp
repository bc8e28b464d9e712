// gaze.optim and gaze.io for Python: optimizers, schedules, gradient clipping, safetensors and
// checkpoints.
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include "bindings.h"
#include "gaze/core/error.h"
#include "gaze/io/checkpoint.h"
#include "gaze/io/safetensors.h"
#include "gaze/io/word_vectors.h"
#include "gaze/nn/module.h"
#include "gaze/optim/average.h"
#include "gaze/optim/schedule.h"

namespace gaze::python {
namespace {

using namespace pybind11::literals;

NamedTensors to_named(const py::dict& d) {
  NamedTensors out;
  for (auto [k, v] : d) {
    Tensor t =
        py::isinstance<Tensor>(v)
            ? v.cast<Tensor>()
            : from_numpy(py::module_::import("numpy").attr("asarray")(v).cast<py::array>(), true);
    out.emplace_back(k.cast<std::string>(), t);
  }
  return out;
}

py::object to_dict(const NamedTensors& d) {
  py::object od = py::module_::import("collections").attr("OrderedDict")();
  for (const auto& [k, v] : d) od[py::str(k)] = v;
  return od;
}

}  // namespace

void register_train(py::module_& m) {
  py::module_ optim = m.def_submodule("_optim", "compiled optimizers");
  py::class_<optim::Optimizer>(optim, "Optimizer")
      .def("step", &optim::Optimizer::step)
      .def(
          "zero_grad", [](optim::Optimizer& o, bool) { o.zero_grad(); }, "set_to_none"_a = true)
      .def_property(
          "lr", [](const optim::Optimizer& o) { return o.lr(); }, &optim::Optimizer::set_lr)
      .def_property_readonly("steps", &optim::Optimizer::steps)
      .def_property_readonly("name", &optim::Optimizer::name)
      .def("state_tensors", [](const optim::Optimizer& o) { return to_dict(o.state_tensors()); });
  py::class_<optim::SGD, optim::Optimizer>(optim, "SGD")
      .def(py::init([](std::vector<Tensor> params, double lr, double momentum, double dampening,
                       double wd, bool nesterov) {
             return std::make_unique<optim::SGD>(
                 std::move(params), optim::SgdOptions{lr, momentum, dampening, wd, nesterov});
           }),
           "params"_a, "lr"_a = 1e-3, "momentum"_a = 0.0, "dampening"_a = 0.0,
           "weight_decay"_a = 0.0, "nesterov"_a = false, py::keep_alive<1, 2>());
  py::class_<optim::Adam, optim::Optimizer>(optim, "Adam")
      .def(py::init([](std::vector<Tensor> params, double lr, std::pair<double, double> betas,
                       double eps, double wd) {
             optim::AdamOptions o{lr, betas.first, betas.second, eps, wd};
             return std::make_unique<optim::Adam>(std::move(params), o, /*decoupled=*/false);
           }),
           "params"_a, "lr"_a = 1e-3, "betas"_a = std::pair{0.9, 0.999}, "eps"_a = 1e-8,
           "weight_decay"_a = 0.0)
      .def_static(
          "adamw",
          [](std::vector<Tensor> params, double lr, std::pair<double, double> betas, double eps,
             double wd) {
            return std::make_unique<optim::Adam>(
                std::move(params), optim::AdamOptions{lr, betas.first, betas.second, eps, wd},
                true);
          },
          "params"_a, "lr"_a = 1e-3, "betas"_a = std::pair{0.9, 0.999}, "eps"_a = 1e-8,
          "weight_decay"_a = 1e-2);
  optim.def(
      "clip_grad_norm_",
      [](const std::vector<Tensor>& params, double max_norm) {
        return optim::clip_grad_norm_(params, max_norm);
      },
      "parameters"_a, "max_norm"_a);
  py::class_<optim::ExponentialAverage>(optim, "ExponentialAverage")
      .def(py::init<std::vector<Tensor>, double>(), "params"_a, "decay"_a = 0.999,
           py::keep_alive<1, 2>())
      .def("update", &optim::ExponentialAverage::update)
      .def("swap", &optim::ExponentialAverage::swap)
      .def_property_readonly("swapped", &optim::ExponentialAverage::swapped)
      .def_property_readonly("updates", &optim::ExponentialAverage::updates)
      .def("state_tensors",
           [](const optim::ExponentialAverage& a) { return to_dict(a.state_tensors()); });
  py::class_<optim::LRScheduler>(optim, "LRScheduler")
      .def(py::init([](optim::Optimizer& o, const std::string& kind, int64_t warmup, int64_t total,
                       double min_ratio) {
             return std::make_unique<optim::LRScheduler>(
                 o, optim::Schedule{optim::parse_schedule(kind), warmup, total, min_ratio});
           }),
           "optimizer"_a, "schedule"_a = "constant", "warmup_steps"_a = 0, "total_steps"_a = 0,
           "min_lr_ratio"_a = 0.0, py::keep_alive<1, 2>())
      .def("step", &optim::LRScheduler::step)
      .def_property_readonly("last_step", &optim::LRScheduler::last_step)
      .def_property_readonly("base_lr", &optim::LRScheduler::base_lr);
  optim.def(
      "schedule_factor",
      [](const std::string& kind, int64_t step, int64_t warmup, int64_t total, double min_ratio) {
        return optim::Schedule{optim::parse_schedule(kind), warmup, total, min_ratio}.factor(step);
      },
      "schedule"_a, "step"_a, "warmup_steps"_a = 0, "total_steps"_a = 0, "min_lr_ratio"_a = 0.0);

  py::module_ io = m.def_submodule("_io", "compiled checkpoint I/O");
  io.def(
      "read_word_vectors",
      [](const std::filesystem::path& path, int64_t max_words) {
        io::WordVectors v = io::read_word_vectors(path.string(), max_words);
        return py::make_tuple(v.words, v.vectors);
      },
      "path"_a, "max_words"_a = 0);
  io.def(
      "save_safetensors",
      [](const std::filesystem::path& path, const py::dict& tensors,
         const std::map<std::string, std::string>& metadata) {
        io::save_safetensors(path.string(), to_named(tensors), metadata);
      },
      "path"_a, "tensors"_a, "metadata"_a = std::map<std::string, std::string>{});
  io.def(
      "load_safetensors",
      [](const std::filesystem::path& path) {
        io::SafetensorsFile f = io::load_safetensors(path.string());
        return py::make_tuple(to_dict(f.tensors), f.metadata);
      },
      "path"_a);
  io.def(
      "save_checkpoint",
      [](const std::filesystem::path& path, const nn::Module& model, const std::string& config,
         optim::Optimizer* opt, optim::LRScheduler* sched, const std::string& progress) {
        const std::string dir = path.string();
        if (!opt) return io::save_checkpoint(dir, model, config);
        const io::TrainingState s = io::capture_training_state(*opt, sched, progress);
        io::save_checkpoint(dir, model, config, &s);
      },
      "dir"_a, "model"_a, "config"_a, "optimizer"_a = nullptr, "scheduler"_a = nullptr,
      "progress"_a = "{}");
  io.def(
      "load_checkpoint",
      [](const std::filesystem::path& dir) {
        io::Checkpoint ck = io::load_checkpoint(dir.string());
        py::dict d;
        d["config"] = ck.config_json;
        d["model"] = to_dict(ck.model);
        d["has_training_state"] = ck.training.has_value();
        if (ck.training) d["progress"] = ck.training->progress;
        return d;
      },
      "dir"_a);
  io.def(
      "restore_training",
      [](const std::filesystem::path& path, optim::Optimizer& opt, optim::LRScheduler* sched) {
        const std::string dir = path.string();
        io::Checkpoint ck = io::load_checkpoint(dir);
        GAZE_CHECK(ck.training.has_value(), DataError, "{}: the checkpoint holds no training state",
                   dir);
        // Its model tensors are the average, not the weights the optimizer state belongs to.
        GAZE_CHECK(ck.training->average_tensors.empty(), DataError,
                   "{}: this checkpoint was written with a weight average (train.ema_decay): its "
                   "model is the average and the training weights are kept beside it; resume it "
                   "with `gaze train --resume`",
                   dir);
        io::restore_training_state(*ck.training, opt, sched);
        return ck.training->progress;
      },
      "dir"_a, "optimizer"_a, "scheduler"_a = nullptr);
}

}  // namespace gaze::python
