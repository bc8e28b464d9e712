// gaze._C: the compiled half of the Python package `gaze`.
#include "bindings.h"

#include <string>

#include "gaze/core/version.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "gaze: attention-based sequence models in C++ (compiled core)";
  m.attr("__version__") = std::string(gaze::version());
  m.attr("git_commit") = std::string(gaze::git_commit());
  gaze::python::register_errors(m);
  gaze::python::register_tensor(m);
  gaze::python::register_ops(m);
  gaze::python::register_nn(m);
  gaze::python::register_nn_layers(m);
  gaze::python::register_train(m);
  gaze::python::register_models(m);
  gaze::python::register_metrics(m);
  gaze::python::register_tasks(m);
  gaze::python::register_text(m);
}
