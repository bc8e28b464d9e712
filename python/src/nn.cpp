// gaze.nn for Python: the Module base (parameters, state_dict, train/eval), Linear and the
// attention modules, the KV cache, and the attention functions of gaze.nn.functional.
#include <pybind11/stl.h>

#include "bindings.h"
#include "gaze/core/error.h"
#include "gaze/nn/kv_cache.h"
#include "gaze/nn/linear.h"
#include "gaze/nn/multihead_attention.h"
#include "gaze/nn/positional.h"
#include "gaze/nn/rnn_attention.h"
#include "gaze/ops/ops.h"

namespace gaze::python {
namespace {

using namespace pybind11::literals;

HeadsLayout layout_arg(const std::string& s) {
  if (s == "bhtd") return HeadsLayout::bhtd;
  if (s == "bthd") return HeadsLayout::bthd;
  if (s == "tbhd") return HeadsLayout::tbhd;
  throw ValueError(fmt::format("layout must be 'bhtd', 'bthd' or 'tbhd', got '{}'", s));
}

Tensor opt(const std::optional<Tensor>& t) {
  return t ? *t : Tensor();
}

// A state-dict value from Python: a gaze tensor, a torch tensor or anything numpy can read
// (copied).
Tensor value_arg(const py::handle& v) {
  if (py::isinstance<Tensor>(v)) return v.cast<Tensor>();
  py::object obj = py::reinterpret_borrow<py::object>(v);
  if (py::hasattr(obj, "detach"))
    obj = obj.attr("detach")().attr("cpu")().attr("numpy")();  // torch
  return from_numpy(py::module_::import("numpy").attr("asarray")(obj).cast<py::array>(), true);
}

py::object named(const NamedTensors& d) {
  py::object od = py::module_::import("collections").attr("OrderedDict")();
  for (const auto& [k, v] : d) od[py::str(k)] = v;
  return od;
}

nn::SourceMask source_mask(const std::optional<Tensor>& lengths,
                           const std::optional<Tensor>& padding) {
  return {opt(lengths), opt(padding)};
}

}  // namespace

void register_nn(py::module_& m) {
  py::module_ nn = m.def_submodule("_nn", "compiled nn modules");

  py::class_<nn::Module, std::shared_ptr<nn::Module>>(nn, "Module")
      .def("parameters", [](const nn::Module& self) { return self.parameters(); })
      .def("named_parameters", [](const nn::Module& self) { return self.named_parameters(); })
      .def(
          "state_dict",
          [](const nn::Module& self, bool keep_vars) { return named(self.state_dict(keep_vars)); },
          "keep_vars"_a = false)
      .def(
          "load_state_dict",
          [](nn::Module& self, const py::dict& state, bool strict, bool assign) {
            NamedTensors sd;
            for (auto [k, v] : state) sd.emplace_back(k.cast<std::string>(), value_arg(v));
            self.load_state_dict(sd, strict, assign);
          },
          "state_dict"_a, "strict"_a = true, "assign"_a = false)
      .def(
          "train",
          [](std::shared_ptr<nn::Module> self, bool on) {
            self->train(on);
            return self;
          },
          "mode"_a = true)
      .def("eval",
           [](std::shared_ptr<nn::Module> self) {
             self->eval();
             return self;
           })
      .def_property_readonly("training", &nn::Module::is_training)
      .def("zero_grad", &nn::Module::zero_grad)
      .def(
          "to",
          [](std::shared_ptr<nn::Module> self, DType t) {
            self->to(t);
            return self;
          },
          "dtype"_a)
      .def_property_readonly("type_name", &nn::Module::type_name);

  py::class_<nn::Linear, nn::Module, std::shared_ptr<nn::Linear>>(nn, "Linear")
      .def(py::init<int64_t, int64_t, bool>(), "in_features"_a, "out_features"_a, "bias"_a = true)
      .def("forward", &nn::Linear::forward, "input"_a)
      .def_readonly("weight", &nn::Linear::weight)
      .def_property_readonly("bias", [](const nn::Linear& l) {
        return l.bias.defined() ? py::cast(l.bias) : py::none();
      });

  py::class_<nn::MultiheadAttention, nn::Module, std::shared_ptr<nn::MultiheadAttention>>(
      nn, "MultiheadAttention")
      .def(py::init<int64_t, int64_t, double, bool, std::optional<int64_t>, std::optional<int64_t>,
                    bool>(),
           "embed_dim"_a, "num_heads"_a, "dropout"_a = 0.0, "bias"_a = true, "kdim"_a = py::none(),
           "vdim"_a = py::none(), "batch_first"_a = false)
      .def(
          "forward",
          [](const nn::MultiheadAttention& self, const Tensor& q, const Tensor& k, const Tensor& v,
             std::optional<Tensor> key_padding_mask, bool need_weights,
             std::optional<Tensor> attn_mask, bool average_attn_weights, bool is_causal,
             std::optional<int64_t> window) {
            auto r = self.forward(q, k, v,
                                  {.key_padding_mask = opt(key_padding_mask),
                                   .need_weights = need_weights,
                                   .attn_mask = opt(attn_mask),
                                   .average_attn_weights = average_attn_weights,
                                   .is_causal = is_causal,
                                   .window = window});
            return py::make_tuple(r.output, r.weights.defined() ? py::cast(r.weights) : py::none());
          },
          "query"_a, "key"_a, "value"_a, "key_padding_mask"_a = py::none(), "need_weights"_a = true,
          "attn_mask"_a = py::none(), "average_attn_weights"_a = true, "is_causal"_a = false,
          py::kw_only(), "window"_a = py::none())
      .def_readonly("embed_dim", &nn::MultiheadAttention::embed_dim)
      .def_readonly("num_heads", &nn::MultiheadAttention::num_heads)
      .def_readonly("head_dim", &nn::MultiheadAttention::head_dim)
      .def_readonly("batch_first", &nn::MultiheadAttention::batch_first)
      .def_readonly("out_proj", &nn::MultiheadAttention::out_proj);

  auto context = [](const nn::AttentionContext& c) { return py::make_tuple(c.context, c.weights); };
  py::class_<nn::AdditiveAttention, nn::Module, std::shared_ptr<nn::AdditiveAttention>>(
      nn, "AdditiveAttention")
      .def(py::init<int64_t, int64_t, int64_t>(), "query_dim"_a, "key_dim"_a, "hidden_dim"_a)
      .def("project_keys", &nn::AdditiveAttention::project_keys, "keys"_a)
      .def(
          "forward",
          [context](const nn::AdditiveAttention& self, const Tensor& q, const Tensor& k,
                    std::optional<Tensor> v, std::optional<Tensor> lengths,
                    std::optional<Tensor> padding, std::optional<Tensor> projected) {
            return context(
                self.forward(q, k, opt(v), source_mask(lengths, padding), opt(projected)));
          },
          "query"_a, "keys"_a, "values"_a = py::none(), "lengths"_a = py::none(),
          "padding_mask"_a = py::none(), "projected_keys"_a = py::none());

  py::enum_<nn::LuongScore>(nn, "LuongScore")
      .value("dot", nn::LuongScore::dot)
      .value("general", nn::LuongScore::general)
      .value("concat", nn::LuongScore::concat);
  py::class_<nn::LuongAttention, nn::Module, std::shared_ptr<nn::LuongAttention>>(nn,
                                                                                  "LuongAttention")
      .def(py::init([](const std::string& score, int64_t qd, int64_t kd, int64_t hd) {
             nn::LuongScore s;
             if (score == "dot")
               s = nn::LuongScore::dot;
             else if (score == "general")
               s = nn::LuongScore::general;
             else if (score == "concat")
               s = nn::LuongScore::concat;
             else
               throw ValueError(fmt::format(
                   "LuongAttention: score must be 'dot', 'general' or 'concat', got '{}'", score));
             return std::make_shared<nn::LuongAttention>(s, qd, kd, hd);
           }),
           "score"_a, "query_dim"_a, "key_dim"_a, "hidden_dim"_a = -1)
      .def(
          "forward",
          [context](const nn::LuongAttention& self, const Tensor& q, const Tensor& k,
                    std::optional<Tensor> v, std::optional<Tensor> lengths,
                    std::optional<Tensor> padding) {
            return context(self.forward(q, k, opt(v), source_mask(lengths, padding)));
          },
          "query"_a, "keys"_a, "values"_a = py::none(), "lengths"_a = py::none(),
          "padding_mask"_a = py::none());

  py::class_<nn::SinusoidalPositionalEncoding, nn::Module,
             std::shared_ptr<nn::SinusoidalPositionalEncoding>>(nn, "SinusoidalPositionalEncoding")
      .def(py::init<int64_t, bool>(), "d_model"_a, "batch_first"_a = true)
      .def("forward", &nn::SinusoidalPositionalEncoding::forward, "x"_a, "offset"_a = 0);
  py::class_<nn::LearnedPositionalEmbedding, nn::Module,
             std::shared_ptr<nn::LearnedPositionalEmbedding>>(nn, "LearnedPositionalEmbedding")
      .def(py::init<int64_t, int64_t, bool>(), "num_positions"_a, "embedding_dim"_a,
           "batch_first"_a = true)
      .def("forward", &nn::LearnedPositionalEmbedding::forward, "x"_a, "offset"_a = 0)
      .def_readonly("weight", &nn::LearnedPositionalEmbedding::weight);
  py::class_<nn::RotaryEmbedding, nn::Module, std::shared_ptr<nn::RotaryEmbedding>>(
      nn, "RotaryEmbedding")
      .def(py::init<int64_t, double, bool>(), "rotary_dim"_a, "base"_a = 10000.0,
           "interleaved"_a = false)
      .def(
          "forward",
          [](const nn::RotaryEmbedding& self, const Tensor& x, int64_t offset,
             const std::string& layout) { return self.forward(x, offset, layout_arg(layout)); },
          "x"_a, "offset"_a = 0, "layout"_a = "bhtd");

  py::class_<nn::KVCache>(nn, "KVCache")
      .def(py::init<int64_t, int64_t, int64_t, int64_t, int64_t, DType, bool>(), "batch"_a,
           "num_kv_heads"_a, "head_dim"_a, "value_dim"_a = -1, "capacity"_a = 64,
           "dtype"_a = DType::f32, "bf16"_a = false)
      .def(
          "append",
          [](nn::KVCache& c, const Tensor& k, const Tensor& v, const std::string& layout) {
            c.append(k, v, layout_arg(layout));
          },
          "key"_a, "value"_a, "layout"_a = "bhtd")
      .def(
          "attend",
          [](const nn::KVCache& c, const Tensor& q, const std::string& layout) {
            return c.attend(q, layout_arg(layout));
          },
          "query"_a, "layout"_a = "bhtd")
      .def("reorder", &nn::KVCache::reorder, "indices"_a)
      .def("clear", &nn::KVCache::clear)
      .def_property_readonly("length", &nn::KVCache::length)
      .def("keys", &nn::KVCache::keys)
      .def("values", &nn::KVCache::values);

  // --- functional
  // -----------------------------------------------------------------------------------
  m.def(
      "scaled_dot_product_attention",
      [](const Tensor& q, const Tensor& k, const Tensor& v, std::optional<Tensor> attn_mask,
         double dropout_p, bool is_causal, std::optional<double> scale,
         std::optional<Tensor> key_lengths, std::optional<Tensor> key_padding_mask,
         const std::string& layout, std::optional<std::string> kv_layout,
         const std::string& causal_alignment, std::optional<Tensor> alibi_slopes, bool need_weights,
         std::vector<int64_t> weight_heads, std::optional<Generator*> generator,
         std::optional<int64_t> window) -> py::object {
        SdpaOptions o;
        o.window = window;
        o.attn_mask = opt(attn_mask);
        o.dropout_p = dropout_p;
        o.is_causal = is_causal;
        o.scale = scale;
        o.key_lengths = opt(key_lengths);
        o.key_padding_mask = opt(key_padding_mask);
        o.layout = layout_arg(layout);
        if (kv_layout) o.kv_layout = layout_arg(*kv_layout);
        GAZE_CHECK(causal_alignment == "top_left" || causal_alignment == "bottom_right", ValueError,
                   "causal_alignment must be 'top_left' or 'bottom_right', got '{}'",
                   causal_alignment);
        o.causal_alignment = causal_alignment == "bottom_right" ? CausalAlignment::bottom_right
                                                                : CausalAlignment::top_left;
        o.alibi_slopes = opt(alibi_slopes);
        o.need_weights = need_weights;
        o.weight_heads = std::move(weight_heads);
        o.generator = generator ? *generator : nullptr;
        SdpaResult r = scaled_dot_product_attention(q, k, v, o);
        if (need_weights) return py::make_tuple(r.output, r.weights);
        return py::cast(r.output);
      },
      "query"_a, "key"_a, "value"_a, "attn_mask"_a = py::none(), "dropout_p"_a = 0.0,
      "is_causal"_a = false, "scale"_a = py::none(), py::kw_only(), "key_lengths"_a = py::none(),
      "key_padding_mask"_a = py::none(), "layout"_a = "bhtd", "kv_layout"_a = py::none(),
      "causal_alignment"_a = "top_left", "alibi_slopes"_a = py::none(), "need_weights"_a = false,
      "weight_heads"_a = std::vector<int64_t>{}, "generator"_a = py::none(),
      "window"_a = py::none(),
      "PyTorch 2.x scaled_dot_product_attention on gaze's fused kernel. With need_weights=True "
      "returns "
      "(output, weights) and builds the Tq x Tk weights of the requested heads.");
  m.def("masked_softmax", &masked_softmax, "input"_a, "mask"_a, "dim"_a);
  m.def(
      "rotary_embedding",
      [](const Tensor& x, double base, bool interleaved, int64_t rotary_dim, int64_t offset,
         std::optional<Tensor> positions, const std::string& layout) {
        RotaryOptions o;
        o.base = base, o.interleaved = interleaved, o.rotary_dim = rotary_dim, o.offset = offset;
        o.positions = opt(positions);
        o.layout = layout_arg(layout);
        return rotary_embedding(x, o);
      },
      "x"_a, "base"_a = 10000.0, "interleaved"_a = false, "rotary_dim"_a = -1, "offset"_a = 0,
      "positions"_a = py::none(), "layout"_a = "bhtd");
  m.def("sinusoidal_positions", &sinusoidal_positions, "n"_a, "dim"_a, "offset"_a = 0,
        "dtype"_a = DType::f32);
  m.def("alibi_slopes", &alibi_slopes, "num_heads"_a, "dtype"_a = DType::f32);
}

}  // namespace gaze::python
