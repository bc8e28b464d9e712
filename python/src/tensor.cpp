// The Tensor class for Python: metadata, numpy interchange (zero-copy where safe), autograd entry
// points and in-place writes. Arithmetic and the PyTorch-style methods are added in
// gaze/__init__.py.
#include <memory>

#include "bindings.h"
#include "gaze/autograd/node.h"
#include "gaze/core/autocast.h"
#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/kernels/lowp_gemm.h"

namespace gaze::python {
namespace {

std::optional<DType> numpy_dtype(const py::dtype& dt) {
  switch (dt.kind()) {
    case 'f':
      if (dt.itemsize() == 4) return DType::f32;
      if (dt.itemsize() == 8) return DType::f64;
      return std::nullopt;
    case 'i':
      if (dt.itemsize() == 8) return DType::i64;
      return std::nullopt;
    case 'b':
      return DType::b8;
    default:
      return std::nullopt;
  }
}

py::dtype to_numpy_dtype(DType t) {
  switch (t) {
    case DType::f32:
      return py::dtype::of<float>();
    case DType::f64:
      return py::dtype::of<double>();
    case DType::i64:
      return py::dtype::of<int64_t>();
    case DType::b8:
      return py::dtype::of<bool>();
  }
  return py::dtype::of<float>();
}

// Holds a Python reference; dropping it needs the GIL, whichever thread releases the storage.
struct PyRef {
  explicit PyRef(py::object obj) : o(std::move(obj)) {}
  ~PyRef() {
    py::gil_scoped_acquire gil;
    o = py::object();
  }
  py::object o;
};

Shape shape_of(const py::array& a) {
  std::vector<int64_t> dims(a.shape(), a.shape() + a.ndim());
  return Shape(dims);
}

}  // namespace

Tensor from_numpy(const py::array& given, bool force_copy) {
  // A byte order other than the machine's (dtype '>f4' here) is converted in a copy: its bytes
  // read as native numbers would be garbage.
  const bool native = given.dtype().attr("isnative").cast<bool>();
  const py::array in =
      native ? given
             : given.attr("astype")(given.dtype().attr("newbyteorder")("=")).cast<py::array>();
  force_copy = force_copy || !native;
  const auto dt = numpy_dtype(in.dtype());
  if (!dt) {
    throw ValueError(fmt::format(
        "unsupported numpy dtype '{}': gaze tensors hold float32, float64, int64 or bool",
        std::string(py::str(in.dtype()))));
  }
  const bool contiguous = (in.flags() & py::array::c_style) != 0;
  const bool writeable = in.writeable();
  const Shape shape = shape_of(in);
  if (!force_copy && contiguous && writeable) {
    // The array stays alive for as long as the tensor's storage lives.
    return Tensor::from_blob(const_cast<void*>(in.data()), shape, *dt, std::make_shared<PyRef>(in));
  }
  py::array c = py::array::ensure(in, py::array::c_style | py::array::forcecast);
  Tensor t = Tensor::empty(shape, *dt);
  if (t.nbytes()) std::memcpy(t.raw_data(), c.data(), t.nbytes());
  return t;
}

py::array to_numpy(const Tensor& t) {
  // The capsule owns a reference to the storage; numpy keeps the capsule as the array's base.
  auto holder = std::make_unique<std::shared_ptr<Storage>>(t.storage());
  py::capsule base(holder.get(), [](void* p) {
    std::unique_ptr<std::shared_ptr<Storage>>(static_cast<std::shared_ptr<Storage>*>(p));
  });
  holder.release();
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  std::vector<py::ssize_t> strides(shape.size());
  py::ssize_t acc = static_cast<py::ssize_t>(dtype_size(t.dtype()));
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = acc;
    acc *= shape[i];
  }
  return py::array(to_numpy_dtype(t.dtype()), shape, strides, t.raw_data(), base);
}

void register_tensor(py::module_& m) {
  py::enum_<DType>(m, "dtype")
      .value("float32", DType::f32)
      .value("float64", DType::f64)
      .value("int64", DType::i64)
      .value("bool", DType::b8);

  py::class_<Tensor>(m, "Tensor")
      .def_property_readonly("shape",
                             [](const Tensor& t) { return py::tuple(py::cast(t.shape().vec())); })
      .def_property_readonly("dtype", &Tensor::dtype)
      .def_property_readonly("ndim", &Tensor::dim)
      .def("dim", &Tensor::dim)
      .def("numel", &Tensor::numel)
      .def(
          "size",
          [](const Tensor& t, std::optional<int64_t> dim) -> py::object {
            if (dim) return py::int_(t.shape().size(static_cast<int>(*dim)));
            return py::tuple(py::cast(t.shape().vec()));
          },
          py::arg("dim") = py::none())
      .def_property("requires_grad", &Tensor::requires_grad,
                    [](Tensor& t, bool on) { t.set_requires_grad(on); })
      .def(
          "requires_grad_",
          [](Tensor& t, bool on) {
            t.set_requires_grad(on);
            return t;
          },
          py::arg("requires_grad") = true)
      .def_property(
          "grad",
          [](const Tensor& t) -> std::optional<Tensor> {
            Tensor g = t.grad();
            if (g.defined()) return g;
            return std::nullopt;
          },
          [](const Tensor& t, std::optional<Tensor> g) { t.set_grad(g ? *g : Tensor()); })
      .def_property_readonly("grad_fn",
                             [](const Tensor& t) -> std::optional<std::string> {
                               if (!t.grad_fn()) return std::nullopt;
                               return t.grad_fn()->name();
                             })
      .def_property_readonly("is_leaf", &Tensor::is_leaf)
      .def(
          "backward",
          [](const Tensor& t, std::optional<Tensor> gradient, bool retain_graph) {
            t.backward(gradient ? *gradient : Tensor(), retain_graph);
          },
          py::arg("gradient") = py::none(), py::arg("retain_graph") = false)
      .def("detach", &Tensor::detach)
      .def("zero_grad", &Tensor::zero_grad)
      .def("numpy",
           [](const Tensor& t) {
             GAZE_CHECK(!t.requires_grad(), StateError,
                        "can't call numpy() on a tensor that requires grad; use "
                        "tensor.detach().numpy() instead");
             return to_numpy(t);
           })
      .def("item",
           [](const Tensor& t) -> py::object {
             GAZE_CHECK(t.numel() == 1, ValueError,
                        "item: only a tensor with one element can be converted to a Python scalar, "
                        "got shape {}",
                        t.shape_str());
             switch (t.dtype()) {
               case DType::f32:
                 return py::float_(*t.data<float>());
               case DType::f64:
                 return py::float_(*t.data<double>());
               case DType::i64:
                 return py::int_(*t.data<int64_t>());
               case DType::b8:
                 return py::bool_(*t.data<bool>());
             }
             return py::none();
           })
      .def("clone_data", &Tensor::clone_data)
      .def("to_dtype", &Tensor::to_dtype)
      .def("fill_", [](Tensor& t, double v) { return t.fill_(v); })
      .def("zero_", [](Tensor& t) { return t.zero_(); })
      .def("copy_", [](Tensor& t, const Tensor& src) { return t.copy_(src); })
      .def("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw_data()); })
      .def("_is_same", &Tensor::is_same);

  m.def(
      "from_numpy", [](const py::array& a) { return from_numpy(a, false); }, py::arg("ndarray"),
      "Tensor sharing memory with a C-contiguous, writeable numpy array of dtype float32, float64, "
      "int64 or "
      "bool (other arrays are copied).");
  m.def(
      "_from_numpy_copy", [](const py::array& a) { return from_numpy(a, true); },
      py::arg("ndarray"));
  m.def("is_grad_enabled", &autograd::grad_mode_enabled);
  m.def("set_grad_enabled", &autograd::set_grad_mode, py::arg("mode"));
  m.def("_autocast_precision", [] { return enum_name(autocast_precision()); });
  m.def(
      "precision_supported",
      [](const std::string& p) {
        return kernels::precision_supported(parse_enum<Precision>(p, "precision"));
      },
      py::arg("precision"),
      "Whether this CPU multiplies in the precision ('fp32', 'bf16', 'int8') in hardware.");
  m.def(
      "_set_autocast_precision",
      [](const std::string& p) { set_autocast_precision(parse_enum<Precision>(p, "precision")); },
      py::arg("precision"));
}

}  // namespace gaze::python
