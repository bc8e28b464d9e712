// Shared declarations of the pybind11 module gaze._C: each source file registers one part.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "gaze/core/tensor.h"

namespace gaze::python {

namespace py = pybind11;

void register_errors(py::module_& m);
void register_tensor(py::module_& m);
void register_ops(py::module_& m);
void register_nn(py::module_& m);
void register_nn_layers(py::module_& m);
void register_train(py::module_& m);
void register_models(py::module_& m);
void register_metrics(py::module_& m);
void register_tasks(py::module_& m);
void register_text(py::module_& m);

// numpy array -> tensor, sharing memory when the array is C-contiguous, writeable and of a gaze
// dtype; otherwise a copy.
Tensor from_numpy(const py::array& a, bool force_copy);
// tensor -> numpy array sharing the tensor's storage.
py::array to_numpy(const Tensor& t);

}  // namespace gaze::python
