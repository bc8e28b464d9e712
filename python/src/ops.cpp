// The ops for Python, with PyTorch's argument names. Scalar overloads come first so that Python
// numbers take the scalar path; tensors in and out (numpy conversion lives in gaze/__init__.py).
#include "gaze/ops/ops.h"
#include "bindings.h"
#include "gaze/core/allocator.h"
#include "gaze/core/simd.h"
#include "gaze/core/threads.h"

namespace gaze::python {
namespace {

std::vector<int64_t> dims_arg(const py::object& dim) {
  if (dim.is_none()) return {};
  if (py::isinstance<py::int_>(dim)) return {dim.cast<int64_t>()};
  return dim.cast<std::vector<int64_t>>();
}

Shape shape_arg(const std::vector<int64_t>& v) {
  return Shape(v);
}

Generator* generator_arg(const py::object& g) {
  return g.is_none() ? nullptr : g.cast<Generator*>();
}

}  // namespace

void register_ops(py::module_& m) {
  // --- settings and random numbers ---------------------------------------------------------------
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_num_threads", &num_threads);
  m.def("manual_seed", &manual_seed, py::arg("seed"));
  m.def("simd_targets", &simd_targets);
  m.def("simd_target", &simd_target);
  m.def("force_simd_target", &force_simd_target, py::arg("name"));
  m.def("allocator_stats", [] {
    const auto s = allocator::stats();
    py::dict d;
    d["system_allocs"] = s.system_allocs;
    d["cache_hits"] = s.cache_hits;
    d["bytes_in_use"] = s.bytes_in_use;
    d["peak_bytes_in_use"] = s.peak_bytes_in_use;
    d["bytes_cached"] = s.bytes_cached;
    return d;
  });
  m.def("reset_peak_memory", &allocator::reset_peak);
  m.def("empty_cache", &allocator::empty_cache);

  py::class_<Generator>(m, "Generator")
      .def(py::init<uint64_t, uint64_t>(), py::arg("seed") = 0, py::arg("stream") = 0)
      .def(
          "manual_seed",
          [](Generator& g, uint64_t s) {
            g.manual_seed(s);
            return &g;
          },
          py::arg("seed"), py::return_value_policy::reference)
      .def("get_state",
           [](const Generator& g) {
             return py::make_tuple(g.state().seed, g.state().stream, g.state().offset);
           })
      .def("set_state", [](Generator& g, const py::tuple& t) {
        g.set_state({t[0].cast<uint64_t>(), t[1].cast<uint64_t>(), t[2].cast<uint64_t>()});
      });

  auto creation = [&](const char* name, auto fn) {
    m.def(name, fn, py::arg("size"), py::arg("dtype") = DType::f32,
          py::arg("generator") = py::none());
  };
  creation("randn", [](const std::vector<int64_t>& s, DType dt, const py::object& g) {
    return randn(shape_arg(s), dt, generator_arg(g));
  });
  creation("rand", [](const std::vector<int64_t>& s, DType dt, const py::object& g) {
    return rand(shape_arg(s), dt, generator_arg(g));
  });
  m.def(
      "zeros",
      [](const std::vector<int64_t>& s, DType dt) { return Tensor::zeros(shape_arg(s), dt); },
      py::arg("size"), py::arg("dtype") = DType::f32);
  m.def(
      "ones",
      [](const std::vector<int64_t>& s, DType dt) { return Tensor::ones(shape_arg(s), dt); },
      py::arg("size"), py::arg("dtype") = DType::f32);
  m.def(
      "empty",
      [](const std::vector<int64_t>& s, DType dt) { return Tensor::empty(shape_arg(s), dt); },
      py::arg("size"), py::arg("dtype") = DType::f32);
  m.def(
      "full",
      [](const std::vector<int64_t>& s, double v, DType dt) {
        return Tensor::full(shape_arg(s), v, dt);
      },
      py::arg("size"), py::arg("fill_value"), py::arg("dtype") = DType::f32);
  m.def(
      "arange", [](int64_t n, DType dt) { return Tensor::arange(n, dt); }, py::arg("end"),
      py::arg("dtype") = DType::i64);

  // --- arithmetic
  // ------------------------------------------------------------------------------------
  m.def("add", py::overload_cast<const Tensor&, double>(&add), py::arg("input"), py::arg("other"));
  m.def("add", py::overload_cast<const Tensor&, const Tensor&, double>(&add), py::arg("input"),
        py::arg("other"), py::kw_only(), py::arg("alpha") = 1.0);
  m.def("sub", py::overload_cast<const Tensor&, double>(&sub), py::arg("input"), py::arg("other"));
  m.def("sub", py::overload_cast<const Tensor&, const Tensor&, double>(&sub), py::arg("input"),
        py::arg("other"), py::kw_only(), py::arg("alpha") = 1.0);
  m.def("rsub", py::overload_cast<const Tensor&, double>(&rsub), py::arg("input"),
        py::arg("other"));
  m.def("mul", py::overload_cast<const Tensor&, double>(&mul), py::arg("input"), py::arg("other"));
  m.def("mul", py::overload_cast<const Tensor&, const Tensor&>(&mul), py::arg("input"),
        py::arg("other"));
  m.def("div", py::overload_cast<const Tensor&, double>(&div), py::arg("input"), py::arg("other"));
  m.def("div", py::overload_cast<const Tensor&, const Tensor&>(&div), py::arg("input"),
        py::arg("other"));
  m.def("rdiv", py::overload_cast<const Tensor&, double>(&rdiv), py::arg("input"),
        py::arg("other"));
  m.def("neg", &neg, py::arg("input"));
  m.def("pow", &pow, py::arg("input"), py::arg("exponent"));
  m.def("sqrt", &sqrt, py::arg("input"));
  m.def("abs", &abs, py::arg("input"));
  m.def("reciprocal", &reciprocal, py::arg("input"));
  m.def("exp", &exp, py::arg("input"));
  m.def("log", &log, py::arg("input"));
  m.def("tanh", &tanh, py::arg("input"));
  m.def("sigmoid", &sigmoid, py::arg("input"));
  m.def("relu", &relu, py::arg("input"));
  m.def(
      "gelu", [](const Tensor& x, const std::string& approximate) { return gelu(x, approximate); },
      py::arg("input"), py::arg("approximate") = "none");
  m.def(
      "expand",
      [](const Tensor& x, const std::vector<int64_t>& s) { return expand(x, shape_arg(s)); },
      py::arg("input"), py::arg("size"));

  // --- reductions
  // --------------------------------------------------------------------------------------
  m.def(
      "sum",
      [](const Tensor& x, const py::object& dim, bool keepdim) {
        return dim.is_none() ? (keepdim ? sum(x, {}, true) : sum(x))
                             : sum(x, dims_arg(dim), keepdim);
      },
      py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def(
      "mean",
      [](const Tensor& x, const py::object& dim, bool keepdim) {
        return dim.is_none() ? (keepdim ? mean(x, {}, true) : mean(x))
                             : mean(x, dims_arg(dim), keepdim);
      },
      py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def(
      "max",
      [](const Tensor& x, const py::object& dim, bool keepdim) -> py::object {
        if (dim.is_none()) return py::cast(max(x));
        MaxResult r = max(x, dim.cast<int64_t>(), keepdim);
        return py::make_tuple(r.values, r.indices);
      },
      py::arg("input"), py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def(
      "sum_to",
      [](const Tensor& x, const std::vector<int64_t>& s) { return sum_to(x, shape_arg(s)); },
      py::arg("input"), py::arg("size"));

  // --- shape ops
  // ---------------------------------------------------------------------------------------
  m.def("reshape", py::overload_cast<const Tensor&, const std::vector<int64_t>&>(&reshape),
        py::arg("input"), py::arg("shape"));
  m.def("flatten", &flatten, py::arg("input"), py::arg("start_dim") = 0, py::arg("end_dim") = -1);
  m.def("unsqueeze", &unsqueeze, py::arg("input"), py::arg("dim"));
  m.def(
      "squeeze",
      [](const Tensor& x, const py::object& dim) {
        return dim.is_none() ? squeeze(x) : squeeze(x, dim.cast<int64_t>());
      },
      py::arg("input"), py::arg("dim") = py::none());
  m.def("permute", &permute, py::arg("input"), py::arg("dims"));
  m.def("transpose", &transpose, py::arg("input"), py::arg("dim0"), py::arg("dim1"));
  m.def("cat", &cat, py::arg("tensors"), py::arg("dim") = 0);
  m.def(
      "split",
      [](const Tensor& x, const py::object& s, int64_t dim) {
        if (py::isinstance<py::int_>(s)) return split(x, s.cast<int64_t>(), dim);
        return split(x, s.cast<std::vector<int64_t>>(), dim);
      },
      py::arg("tensor"), py::arg("split_size_or_sections"), py::arg("dim") = 0);
  m.def("chunk", &chunk, py::arg("input"), py::arg("chunks"), py::arg("dim") = 0);
  m.def("slice", &slice, py::arg("input"), py::arg("dim"), py::arg("start") = py::none(),
        py::arg("end") = py::none(), py::arg("step") = 1);
  m.def("narrow", &narrow, py::arg("input"), py::arg("dim"), py::arg("start"), py::arg("length"));
  m.def("select", &select, py::arg("input"), py::arg("dim"), py::arg("index"));

  // --- linear algebra, normalisation, the rest of torch.nn.functional
  // ----------------------------------
  m.def("matmul", &matmul, py::arg("input"), py::arg("other"), py::kw_only(),
        py::arg("transpose_a") = false, py::arg("transpose_b") = false);
  m.def("bmm", &bmm, py::arg("input"), py::arg("mat2"));
  m.def(
      "linear",
      [](const Tensor& x, const Tensor& w, std::optional<Tensor> b) {
        return linear(x, w, b ? *b : Tensor());
      },
      py::arg("input"), py::arg("weight"), py::arg("bias") = py::none());
  m.def("softmax", &softmax, py::arg("input"), py::arg("dim"));
  m.def("log_softmax", &log_softmax, py::arg("input"), py::arg("dim"));
  m.def(
      "layer_norm",
      [](const Tensor& x, const py::object& ns, std::optional<Tensor> w, std::optional<Tensor> b,
         double eps) {
        return layer_norm(x, dims_arg(ns), w ? *w : Tensor(), b ? *b : Tensor(), eps);
      },
      py::arg("input"), py::arg("normalized_shape"), py::arg("weight") = py::none(),
      py::arg("bias") = py::none(), py::arg("eps") = 1e-5);
  m.def(
      "embedding",
      [](const Tensor& in, const Tensor& w, std::optional<int64_t> padding_idx) {
        return embedding(in, w, padding_idx);
      },
      py::arg("input"), py::arg("weight"), py::arg("padding_idx") = py::none());
  m.def(
      "dropout",
      [](const Tensor& x, double p, bool training, const py::object& g) {
        return dropout(x, p, training, generator_arg(g));
      },
      py::arg("input"), py::arg("p") = 0.5, py::arg("training") = true,
      py::arg("generator") = py::none());
  m.def(
      "cross_entropy",
      [](const Tensor& x, const Tensor& t, std::optional<Tensor> w, int64_t ignore_index,
         const std::string& reduction, double label_smoothing) {
        CrossEntropyOptions o;
        if (w) o.weight = *w;
        o.ignore_index = ignore_index;
        o.reduction = parse_reduction(reduction);
        o.label_smoothing = label_smoothing;
        return cross_entropy(x, t, o);
      },
      py::arg("input"), py::arg("target"), py::arg("weight") = py::none(),
      py::arg("ignore_index") = -100, py::arg("reduction") = "mean",
      py::arg("label_smoothing") = 0.0);
  m.def(
      "mse_loss",
      [](const Tensor& x, const Tensor& t, const std::string& reduction) {
        return mse_loss(x, t, parse_reduction(reduction));
      },
      py::arg("input"), py::arg("target"), py::arg("reduction") = "mean");
}

}  // namespace gaze::python
