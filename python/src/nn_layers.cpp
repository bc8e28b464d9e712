// gaze.nn layers for Python: Embedding, LayerNorm, Dropout and the Transformer family, with torch's
// constructor and forward signatures.
#include <pybind11/stl.h>

#include "bindings.h"
#include "gaze/nn/crf.h"
#include "gaze/nn/embedding.h"
#include "gaze/nn/rnn.h"
#include "gaze/nn/transformer.h"

namespace gaze::python {
namespace {

using namespace pybind11::literals;

Tensor opt(const std::optional<Tensor>& t) {
  return t ? *t : Tensor();
}

nn::TransformerLayerOptions layer_options(int64_t d_model, int64_t nhead, int64_t ff,
                                          double dropout, const std::string& activation, double eps,
                                          bool batch_first, bool norm_first, bool bias) {
  nn::TransformerLayerOptions o;
  o.d_model = d_model, o.nhead = nhead, o.dim_feedforward = ff, o.dropout = dropout;
  o.activation = parse_activation(activation);
  o.layer_norm_eps = eps, o.batch_first = batch_first, o.norm_first = norm_first, o.bias = bias;
  return o;
}

py::object weights_or_none(const std::vector<Tensor>& ws) {
  if (ws.empty()) return py::none();
  return py::cast(ws);
}

}  // namespace

void register_nn_layers(py::module_& m) {
  py::module_ nn = m.attr("_nn");
  py::class_<nn::CRF, nn::Module, std::shared_ptr<nn::CRF>>(nn, "CRF")
      .def(py::init<int64_t, bool>(), "num_tags"_a, "batch_first"_a = false)
      .def(
          "forward",
          [](const nn::CRF& c, const Tensor& emissions, const Tensor& tags,
             std::optional<Tensor> mask, const std::string& reduction) {
            return c.forward(emissions, tags, opt(mask),
                             parse_enum<nn::CrfReduction>(reduction, "CRF: reduction"));
          },
          "emissions"_a, "tags"_a, "mask"_a = py::none(), "reduction"_a = "sum")
      .def(
          "decode",
          [](const nn::CRF& c, const Tensor& emissions, std::optional<Tensor> mask) {
            return c.decode(emissions, opt(mask));
          },
          "emissions"_a, "mask"_a = py::none())
      .def("constrain", &nn::CRF::constrain, "allowed"_a, "allowed_start"_a, "allowed_end"_a)
      .def_readonly("num_tags", &nn::CRF::num_tags)
      .def_readonly("batch_first", &nn::CRF::batch_first)
      .def_property_readonly("start_transitions",
                             [](const nn::CRF& c) { return c.start_transitions; })
      .def_property_readonly("end_transitions", [](const nn::CRF& c) { return c.end_transitions; })
      .def_property_readonly("transitions", [](const nn::CRF& c) { return c.transitions; });
  py::class_<nn::Embedding, nn::Module, std::shared_ptr<nn::Embedding>>(nn, "Embedding")
      .def(py::init<int64_t, int64_t, std::optional<int64_t>>(), "num_embeddings"_a,
           "embedding_dim"_a, "padding_idx"_a = py::none())
      .def_static("from_pretrained", &nn::Embedding::from_pretrained, "embeddings"_a,
                  "freeze"_a = true, "padding_idx"_a = py::none())
      .def("forward", &nn::Embedding::forward, "input"_a)
      .def_readonly("weight", &nn::Embedding::weight)
      .def_readonly("padding_idx", &nn::Embedding::padding_idx);
  py::class_<nn::LayerNorm, nn::Module, std::shared_ptr<nn::LayerNorm>>(nn, "LayerNorm")
      .def(py::init([](const py::object& shape, double eps, bool affine) {
             std::vector<int64_t> s = py::isinstance<py::int_>(shape)
                                          ? std::vector<int64_t>{shape.cast<int64_t>()}
                                          : shape.cast<std::vector<int64_t>>();
             return std::make_shared<nn::LayerNorm>(s, eps, affine);
           }),
           "normalized_shape"_a, "eps"_a = 1e-5, "elementwise_affine"_a = true)
      .def("forward", &nn::LayerNorm::forward, "input"_a)
      .def_readonly("weight", &nn::LayerNorm::weight)
      .def_readonly("bias", &nn::LayerNorm::bias);
  py::class_<nn::Dropout, nn::Module, std::shared_ptr<nn::Dropout>>(nn, "Dropout")
      .def(py::init<double>(), "p"_a = 0.5)
      .def("forward", &nn::Dropout::forward, "input"_a);

  auto layer_init = [](auto tag) {
    using L = typename decltype(tag)::type;
    return py::init([](int64_t d_model, int64_t nhead, int64_t ff, double dropout,
                       const std::string& activation, double eps, bool batch_first, bool norm_first,
                       bool bias) {
      return std::make_shared<L>(layer_options(d_model, nhead, ff, dropout, activation, eps,
                                               batch_first, norm_first, bias));
    });
  };
  py::class_<nn::TransformerEncoderLayer, nn::Module, std::shared_ptr<nn::TransformerEncoderLayer>>(
      nn, "TransformerEncoderLayer")
      .def(layer_init(std::type_identity<nn::TransformerEncoderLayer>{}), "d_model"_a, "nhead"_a,
           "dim_feedforward"_a = 2048, "dropout"_a = 0.1, "activation"_a = "relu",
           "layer_norm_eps"_a = 1e-5, "batch_first"_a = false, "norm_first"_a = false,
           "bias"_a = true)
      .def(
          "forward",
          [](const nn::TransformerEncoderLayer& l, const Tensor& src,
             std::optional<Tensor> src_mask, std::optional<Tensor> kpm, bool is_causal) {
            return l.forward(
                src,
                {.mask = opt(src_mask), .src_key_padding_mask = opt(kpm), .is_causal = is_causal});
          },
          "src"_a, "src_mask"_a = py::none(), "src_key_padding_mask"_a = py::none(),
          "is_causal"_a = false)
      .def_readonly("self_attn", &nn::TransformerEncoderLayer::self_attn);
  py::class_<nn::TransformerDecoderLayer, nn::Module, std::shared_ptr<nn::TransformerDecoderLayer>>(
      nn, "TransformerDecoderLayer")
      .def(layer_init(std::type_identity<nn::TransformerDecoderLayer>{}), "d_model"_a, "nhead"_a,
           "dim_feedforward"_a = 2048, "dropout"_a = 0.1, "activation"_a = "relu",
           "layer_norm_eps"_a = 1e-5, "batch_first"_a = false, "norm_first"_a = false,
           "bias"_a = true)
      .def(
          "forward",
          [](const nn::TransformerDecoderLayer& l, const Tensor& tgt, const Tensor& memory,
             std::optional<Tensor> tgt_mask, std::optional<Tensor> memory_mask,
             std::optional<Tensor> tgt_kpm, std::optional<Tensor> mem_kpm, bool tgt_is_causal,
             bool memory_is_causal) {
            return l.forward(tgt, memory,
                             {.tgt_mask = opt(tgt_mask),
                              .memory_mask = opt(memory_mask),
                              .tgt_key_padding_mask = opt(tgt_kpm),
                              .memory_key_padding_mask = opt(mem_kpm),
                              .tgt_is_causal = tgt_is_causal,
                              .memory_is_causal = memory_is_causal});
          },
          "tgt"_a, "memory"_a, "tgt_mask"_a = py::none(), "memory_mask"_a = py::none(),
          "tgt_key_padding_mask"_a = py::none(), "memory_key_padding_mask"_a = py::none(),
          "tgt_is_causal"_a = false, "memory_is_causal"_a = false);
  py::class_<nn::TransformerEncoder, nn::Module, std::shared_ptr<nn::TransformerEncoder>>(
      nn, "TransformerEncoder")
      .def(py::init([](const nn::TransformerEncoderLayer& layer, int64_t n,
                       std::shared_ptr<nn::LayerNorm> norm) {
             return std::make_shared<nn::TransformerEncoder>(layer, n, norm.get());
           }),
           "encoder_layer"_a, "num_layers"_a, "norm"_a = nullptr)
      .def(
          "forward",
          [](const nn::TransformerEncoder& e, const Tensor& src, std::optional<Tensor> mask,
             std::optional<Tensor> kpm, bool is_causal, bool return_attention) -> py::object {
            nn::AttentionCapture cap;
            Tensor out = e.forward(src, {.mask = opt(mask),
                                         .src_key_padding_mask = opt(kpm),
                                         .is_causal = is_causal,
                                         .capture = return_attention ? &cap : nullptr});
            if (!return_attention) return py::cast(out);
            return py::make_tuple(out, weights_or_none(cap.self_attention));
          },
          "src"_a, "mask"_a = py::none(), "src_key_padding_mask"_a = py::none(),
          "is_causal"_a = false, "return_attention"_a = false);
  py::class_<nn::TransformerDecoder, nn::Module, std::shared_ptr<nn::TransformerDecoder>>(
      nn, "TransformerDecoder")
      .def(py::init([](const nn::TransformerDecoderLayer& layer, int64_t n,
                       std::shared_ptr<nn::LayerNorm> norm) {
             return std::make_shared<nn::TransformerDecoder>(layer, n, norm.get());
           }),
           "decoder_layer"_a, "num_layers"_a, "norm"_a = nullptr)
      .def(
          "forward",
          [](const nn::TransformerDecoder& dcd, const Tensor& tgt, const Tensor& memory,
             std::optional<Tensor> tgt_mask, std::optional<Tensor> memory_mask,
             std::optional<Tensor> tgt_kpm, std::optional<Tensor> mem_kpm, bool tgt_is_causal,
             bool return_attention) -> py::object {
            nn::AttentionCapture cap;
            Tensor out = dcd.forward(tgt, memory,
                                     {.tgt_mask = opt(tgt_mask),
                                      .memory_mask = opt(memory_mask),
                                      .tgt_key_padding_mask = opt(tgt_kpm),
                                      .memory_key_padding_mask = opt(mem_kpm),
                                      .tgt_is_causal = tgt_is_causal,
                                      .capture = return_attention ? &cap : nullptr});
            if (!return_attention) return py::cast(out);
            return py::make_tuple(out, weights_or_none(cap.self_attention),
                                  weights_or_none(cap.cross_attention));
          },
          "tgt"_a, "memory"_a, "tgt_mask"_a = py::none(), "memory_mask"_a = py::none(),
          "tgt_key_padding_mask"_a = py::none(), "memory_key_padding_mask"_a = py::none(),
          "tgt_is_causal"_a = false, "return_attention"_a = false);
  py::class_<nn::Transformer, nn::Module, std::shared_ptr<nn::Transformer>>(nn, "Transformer")
      .def(py::init([](int64_t d_model, int64_t nhead, int64_t n_enc, int64_t n_dec, int64_t ff,
                       double dropout, const std::string& activation, double eps, bool batch_first,
                       bool norm_first, bool bias) {
             nn::TransformerOptions o;
             o.layer = layer_options(d_model, nhead, ff, dropout, activation, eps, batch_first,
                                     norm_first, bias);
             o.num_encoder_layers = n_enc, o.num_decoder_layers = n_dec;
             return std::make_shared<nn::Transformer>(o);
           }),
           "d_model"_a = 512, "nhead"_a = 8, "num_encoder_layers"_a = 6, "num_decoder_layers"_a = 6,
           "dim_feedforward"_a = 2048, "dropout"_a = 0.1, "activation"_a = "relu",
           "layer_norm_eps"_a = 1e-5, "batch_first"_a = false, "norm_first"_a = false,
           "bias"_a = true)
      .def(
          "forward",
          [](const nn::Transformer& t, const Tensor& src, const Tensor& tgt,
             std::optional<Tensor> src_mask, std::optional<Tensor> tgt_mask,
             std::optional<Tensor> memory_mask, std::optional<Tensor> src_kpm,
             std::optional<Tensor> tgt_kpm, std::optional<Tensor> mem_kpm) {
            return t.forward(src, tgt, opt(src_mask), opt(tgt_mask), opt(memory_mask), opt(src_kpm),
                             opt(tgt_kpm), opt(mem_kpm));
          },
          "src"_a, "tgt"_a, "src_mask"_a = py::none(), "tgt_mask"_a = py::none(),
          "memory_mask"_a = py::none(), "src_key_padding_mask"_a = py::none(),
          "tgt_key_padding_mask"_a = py::none(), "memory_key_padding_mask"_a = py::none())
      .def_static("generate_square_subsequent_mask",
                  &nn::Transformer::generate_square_subsequent_mask, "sz"_a,
                  "dtype"_a = DType::f32);

  // --- recurrent layers ---
  auto rnn_init = [](auto tag) {
    using R = typename decltype(tag)::type;
    return py::init([](int64_t in, int64_t hid, int64_t layers, bool bias, bool batch_first,
                       double dropout, bool bidirectional) {
      nn::RnnOptions o;
      o.input_size = in, o.hidden_size = hid, o.num_layers = layers, o.bias = bias,
      o.batch_first = batch_first;
      o.dropout = dropout, o.bidirectional = bidirectional;
      return std::make_shared<R>(o);
    });
  };
  py::class_<nn::RnnBase, nn::Module, std::shared_ptr<nn::RnnBase>>(nn, "RNNBase");
  py::class_<nn::LSTM, nn::RnnBase, std::shared_ptr<nn::LSTM>>(nn, "LSTM")
      .def(rnn_init(std::type_identity<nn::LSTM>{}), "input_size"_a, "hidden_size"_a,
           "num_layers"_a = 1, "bias"_a = true, "batch_first"_a = false, "dropout"_a = 0.0,
           "bidirectional"_a = false)
      .def(
          "forward",
          [](const nn::LSTM& m, const Tensor& input, std::optional<py::tuple> hx,
             std::optional<Tensor> lengths) {
            Tensor h0, c0;
            if (hx) h0 = (*hx)[0].cast<Tensor>(), c0 = (*hx)[1].cast<Tensor>();
            auto r = m.forward(input, opt(lengths), h0, c0);
            return py::make_tuple(r.output, py::make_tuple(r.h_n, r.c_n));
          },
          "input"_a, "hx"_a = py::none(), "lengths"_a = py::none(),
          "Returns (output, (h_n, c_n)) as torch. lengths (int64 [B]) gives packed-sequence "
          "semantics.");
  py::class_<nn::GRU, nn::RnnBase, std::shared_ptr<nn::GRU>>(nn, "GRU")
      .def(rnn_init(std::type_identity<nn::GRU>{}), "input_size"_a, "hidden_size"_a,
           "num_layers"_a = 1, "bias"_a = true, "batch_first"_a = false, "dropout"_a = 0.0,
           "bidirectional"_a = false)
      .def(
          "forward",
          [](const nn::GRU& m, const Tensor& input, std::optional<Tensor> hx,
             std::optional<Tensor> lengths) {
            auto r = m.forward(input, opt(lengths), opt(hx));
            return py::make_tuple(r.output, r.h_n);
          },
          "input"_a, "hx"_a = py::none(), "lengths"_a = py::none());
  py::class_<nn::LSTMCell, nn::Module, std::shared_ptr<nn::LSTMCell>>(nn, "LSTMCell")
      .def(py::init<int64_t, int64_t, bool>(), "input_size"_a, "hidden_size"_a, "bias"_a = true)
      .def(
          "forward",
          [](const nn::LSTMCell& m, const Tensor& input, std::optional<py::tuple> hx) {
            Tensor h, c;
            if (hx) h = (*hx)[0].cast<Tensor>(), c = (*hx)[1].cast<Tensor>();
            auto [h1, c1] = m.forward(input, h, c);
            return py::make_tuple(h1, c1);
          },
          "input"_a, "hx"_a = py::none());
  py::class_<nn::GRUCell, nn::Module, std::shared_ptr<nn::GRUCell>>(nn, "GRUCell")
      .def(py::init<int64_t, int64_t, bool>(), "input_size"_a, "hidden_size"_a, "bias"_a = true)
      .def(
          "forward",
          [](const nn::GRUCell& m, const Tensor& input, std::optional<Tensor> hx) {
            return m.forward(input, opt(hx));
          },
          "input"_a, "hx"_a = py::none());
}

}  // namespace gaze::python
