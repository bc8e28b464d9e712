// Maps gaze's C++ exceptions to Python exception classes. gaze.Error derives from RuntimeError (as
// torch's errors do); gaze.ValueError and gaze.IndexError also derive from the builtin ValueError
// and IndexError, so either spelling catches them.
#include "bindings.h"
#include "gaze/core/error.h"

namespace gaze::python {
namespace {

PyObject* make_class(py::module_& m, const char* name, std::initializer_list<PyObject*> bases) {
  py::tuple b(bases.size());
  size_t i = 0;
  for (PyObject* base : bases) b[i++] = py::reinterpret_borrow<py::object>(base);
  const std::string qual = std::string("gaze._C.") + name;
  PyObject* cls = PyErr_NewException(qual.c_str(), b.ptr(), nullptr);
  if (!cls) throw py::error_already_set();
  m.add_object(name, py::reinterpret_borrow<py::object>(cls));
  return cls;
}

// The Python classes, created once at import (pybind11 translators are plain function pointers).
struct Classes {
  PyObject *error, *value, *index, *state, *data;
};
Classes g_classes{};

}  // namespace

void register_errors(py::module_& m) {
  g_classes.error = make_class(m, "Error", {PyExc_RuntimeError});
  g_classes.value = make_class(m, "ValueError", {g_classes.error, PyExc_ValueError});
  g_classes.index = make_class(m, "IndexError", {g_classes.error, PyExc_IndexError});
  g_classes.state = make_class(m, "StateError", {g_classes.error});
  g_classes.data = make_class(m, "DataError", {g_classes.error, PyExc_ValueError});
  py::register_exception_translator([](std::exception_ptr p) {
    const Classes& c = g_classes;
    try {
      if (p) std::rethrow_exception(p);
    } catch (const gaze::ValueError& e) {
      PyErr_SetString(c.value, e.what());
    } catch (const gaze::IndexError& e) {
      PyErr_SetString(c.index, e.what());
    } catch (const gaze::StateError& e) {
      PyErr_SetString(c.state, e.what());
    } catch (const gaze::DataError& e) {
      PyErr_SetString(c.data, e.what());
    } catch (const gaze::Error& e) {
      PyErr_SetString(c.error, e.what());
    }
  });
}

}  // namespace gaze::python
