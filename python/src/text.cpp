// gaze._C._text: the tokenizers of model folders (the same ones predict and train use), for
// inspection and for tests against reference tokenizers.
#include "bindings.h"
#include "gaze/text/tokenizer.h"

namespace gaze::python {

void register_text(py::module_& m) {
  py::module_ tm = m.def_submodule("_text", "tokenizers");
  py::class_<text::Tokenizer, std::shared_ptr<text::Tokenizer>>(tm, "Tokenizer")
      .def_property_readonly("kind", &text::Tokenizer::kind)
      .def_property_readonly("vocab_size", &text::Tokenizer::vocab_size)
      .def_property_readonly("pad_id", &text::Tokenizer::pad_id)
      .def_property_readonly("unk_id", &text::Tokenizer::unk_id)
      .def("encode", &text::Tokenizer::encode, py::arg("text"))
      .def("tokenize", &text::Tokenizer::tokenize, py::arg("text"))
      .def(
          "decode",
          [](const text::Tokenizer& t, const std::vector<int64_t>& ids) { return t.decode(ids); },
          py::arg("ids"))
      .def("id_to_piece", &text::Tokenizer::id_to_piece, py::arg("id"));
  tm.def(
      "load_tokenizer",
      [](const std::string& dir) {
        return std::shared_ptr<text::Tokenizer>(text::load_tokenizer(dir));
      },
      py::arg("dir"));
}

}  // namespace gaze::python
