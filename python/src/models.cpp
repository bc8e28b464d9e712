// gaze.models for Python: the model classes (built from JSON configurations) and checkpoint
// loading.
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include "bindings.h"
#include "gaze/models/rnn_seq2seq.h"
#include "gaze/models/transformer_models.h"

namespace gaze::python {
namespace {

using namespace pybind11::literals;

Tensor opt(const std::optional<Tensor>& t) {
  return t ? *t : Tensor();
}

py::object with_attention(const Tensor& out, bool ret, const nn::AttentionCapture& cap) {
  if (!ret) return py::cast(out);
  return py::make_tuple(out, cap.self_attention);
}

}  // namespace

void register_models(py::module_& m) {
  py::module_ mm = m.def_submodule("_models", "compiled models");
  py::class_<models::Model, nn::Module, std::shared_ptr<models::Model>>(mm, "Model")
      .def_property_readonly("config", &models::Model::config_json);
  py::class_<models::TransformerClassifier, models::Model,
             std::shared_ptr<models::TransformerClassifier>>(mm, "TransformerClassifier")
      .def(
          "forward",
          [](const models::TransformerClassifier& s, const Tensor& tokens,
             std::optional<Tensor> lengths, bool ret) {
            nn::AttentionCapture cap;
            return with_attention(s.forward(tokens, opt(lengths), ret ? &cap : nullptr), ret, cap);
          },
          "tokens"_a, "lengths"_a = py::none(), "return_attention"_a = false)
      .def(
          "pooling_attention",
          [](const models::TransformerClassifier& s, const Tensor& tokens,
             std::optional<Tensor> lengths) -> py::object {
            nn::AttentionCapture cap;
            s.forward(tokens, opt(lengths), &cap);
            return cap.pooling.defined() ? py::cast(cap.pooling) : py::none();
          },
          "tokens"_a, "lengths"_a = py::none(),
          "The attention pooling's weights over the tokens [B, T] (None for other poolings).");
  py::class_<models::TransformerTagger, models::Model, std::shared_ptr<models::TransformerTagger>>(
      mm, "TransformerTagger")
      .def(
          "forward",
          [](const models::TransformerTagger& s, const Tensor& tokens,
             std::optional<Tensor> lengths, bool ret) {
            nn::AttentionCapture cap;
            return with_attention(s.forward(tokens, opt(lengths), ret ? &cap : nullptr), ret, cap);
          },
          "tokens"_a, "lengths"_a = py::none(), "return_attention"_a = false);
  py::class_<models::SentenceEncoder, models::Model, std::shared_ptr<models::SentenceEncoder>>(
      mm, "SentenceEncoder")
      .def(
          "forward",
          [](const models::SentenceEncoder& s, const Tensor& tokens, std::optional<Tensor> lengths,
             bool ret) {
            nn::AttentionCapture cap;
            return with_attention(s.forward(tokens, opt(lengths), ret ? &cap : nullptr), ret, cap);
          },
          "tokens"_a, "lengths"_a = py::none(), "return_attention"_a = false)
      .def(
          "hidden_states",
          [](const models::SentenceEncoder& s, const Tensor& tokens,
             std::optional<Tensor> lengths) {
            return s.backbone->forward(models::Inputs{tokens, opt(lengths), Tensor()}, nullptr);
          },
          "tokens"_a, "lengths"_a = py::none(), "the backbone's output [B, T, d] (before pooling)");
  py::class_<models::TransformerSeq2Seq, models::Model,
             std::shared_ptr<models::TransformerSeq2Seq>>(mm, "TransformerSeq2Seq")
      .def(
          "forward",
          [](const models::TransformerSeq2Seq& s, const Tensor& src,
             std::optional<Tensor> src_lengths, const Tensor& tgt_in,
             std::optional<Tensor> tgt_lengths, bool ret) -> py::object {
            nn::AttentionCapture enc, dec;
            Tensor out = s.forward(src, opt(src_lengths), tgt_in, opt(tgt_lengths),
                                   ret ? &enc : nullptr, ret ? &dec : nullptr);
            if (!ret) return py::cast(out);
            py::dict att;
            att["encoder"] = enc.self_attention;
            att["decoder"] = dec.self_attention;
            att["cross"] = dec.cross_attention;
            return py::make_tuple(out, att);
          },
          "src"_a, "src_lengths"_a, "tgt_in"_a, "tgt_lengths"_a = py::none(),
          "return_attention"_a = false);
  py::class_<models::RnnSeq2Seq, models::Model, std::shared_ptr<models::RnnSeq2Seq>>(mm,
                                                                                     "RnnSeq2Seq")
      .def(
          "forward",
          [](const models::RnnSeq2Seq& s, const Tensor& src, std::optional<Tensor> src_lengths,
             const Tensor& tgt_in, bool ret) -> py::object {
            Tensor att;
            Tensor out = s.forward(src, opt(src_lengths), tgt_in, ret ? &att : nullptr);
            if (!ret) return py::cast(out);
            return py::make_tuple(out, att);
          },
          "src"_a, "src_lengths"_a, "tgt_in"_a, "return_attention"_a = false);
  mm.def("build_model", &models::build_model, "config"_a);
  mm.def(
      "load_model",
      [](const std::filesystem::path& dir) { return models::load_model(dir.string()); }, "dir"_a);
}

}  // namespace gaze::python
