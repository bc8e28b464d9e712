#include "gaze/imports/bert.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/io/safetensors.h"
#include "gaze/ops/shape_ops.h"
#include "gaze/tasks/task.h"
#include "gaze/text/wordpiece_tokenizer.h"

namespace gaze::imports {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

int64_t key(const json& c, const char* name, const fs::path& file, int64_t lo = 1,
            int64_t hi = int64_t{1} << 24) {
  GAZE_CHECK(c.contains(name) && c[name].is_number_integer(), DataError,
             "{}: \"{}\" must be an integer", file.string(), name);
  const auto v = c[name].get<int64_t>();
  GAZE_CHECK(v >= lo && v <= hi, DataError, "{}: \"{}\" is {}, expected {}..{}", file.string(),
             name, v, lo, hi);
  return v;
}

Activation activation(const std::string& act, const fs::path& file) {
  if (act == "gelu") return Activation::gelu;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") return Activation::gelu_tanh;
  if (act == "relu") return Activation::relu;
  throw DataError(
      fmt::format("{}: activation '{}' (gaze maps gelu, gelu_new, relu)", file.string(), act));
}

// The checkpoint's tensors by their Hugging Face names (the model prefix, e.g. "bert.", dropped;
// old "gamma"/"beta" LayerNorm names read as "weight"/"bias").
class Checkpoint {
 public:
  Checkpoint(const fs::path& path, const std::string& prefix) : path_(path.string()) {
    for (auto& [name, t] : io::load_safetensors(path_).tensors) {
      std::string n = name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
      for (const auto& [old, now] : {std::pair{".gamma", ".weight"}, std::pair{".beta", ".bias"}})
        if (n.size() > std::string(old).size() && n.ends_with(old))
          n = n.substr(0, n.size() - std::string(old).size()) + now;
      tensors_.emplace_back(n, t);
    }
  }
  Tensor take(const std::string& name, const Shape& shape) {
    const Tensor t = find(tensors_, name);
    GAZE_CHECK(t.defined(), DataError, "{}: missing weight '{}'", path_, name);
    GAZE_CHECK(t.shape() == shape, DataError, "{}: weight '{}' is {}, expected {}", path_, name,
               t.shape_str(), shape.str());
    used_.insert(name);
    return t.dtype() == DType::f32 ? t : t.to_dtype(DType::f32);
  }
  bool has(const std::string& name) const { return find(tensors_, name).defined(); }
  // Keys no mapping took: known task heads are listed, anything else is an error.
  std::vector<std::string> rest(const std::vector<std::string>& heads) const {
    std::vector<std::string> ignored;
    for (const auto& entry : tensors_) {
      const std::string& name = entry.first;
      if (used_.count(name) || name == "embeddings.position_ids") continue;
      const bool head = std::any_of(heads.begin(), heads.end(),
                                    [&](const std::string& h) { return name.rfind(h, 0) == 0; });
      GAZE_CHECK(head, DataError, "{}: unexpected weight '{}' (not part of the encoder gaze maps)",
                 path_, name);
      ignored.push_back(name);
    }
    return ignored;
  }

 private:
  std::string path_;
  NamedTensors tensors_;
  std::set<std::string> used_;
};

// Hugging Face's separate query, key and value projections as MultiheadAttention's in_proj.
void put_attention(NamedTensors& s, const std::string& at, Checkpoint& ck, const std::string& q,
                   const std::string& k, const std::string& v, int64_t d) {
  s.emplace_back(at + "self_attn.in_proj_weight",
                 cat({ck.take(q + ".weight", Shape{d, d}), ck.take(k + ".weight", Shape{d, d}),
                      ck.take(v + ".weight", Shape{d, d})},
                     0));
  s.emplace_back(at + "self_attn.in_proj_bias",
                 cat({ck.take(q + ".bias", Shape{d}), ck.take(k + ".bias", Shape{d}),
                      ck.take(v + ".bias", Shape{d})},
                     0));
}

void put_linear(NamedTensors& s, const std::string& to, Checkpoint& ck, const std::string& from,
                int64_t in, int64_t out) {
  s.emplace_back(to + ".weight", ck.take(from + ".weight", Shape{out, in}));
  s.emplace_back(to + ".bias", ck.take(from + ".bias", Shape{out}));
}

void put_norm(NamedTensors& s, const std::string& to, Checkpoint& ck, const std::string& from,
              int64_t d) {
  s.emplace_back(to + ".weight", ck.take(from + ".weight", Shape{d}));
  s.emplace_back(to + ".bias", ck.take(from + ".bias", Shape{d}));
}

std::unique_ptr<text::Tokenizer> tokenizer_of(const fs::path& dir) {
  text::WordPieceOptions o;
  const fs::path tc = dir / "tokenizer_config.json";
  if (fs::exists(tc)) {
    const json j = tasks::read_json_file(tc.string());
    o.lowercase = j.value("do_lower_case", true);
    if (j.contains("strip_accents") && j["strip_accents"].is_boolean())
      o.strip_accents = j["strip_accents"].get<bool>() ? 1 : 0;
    o.split_cjk = j.value("tokenize_chinese_chars", true);
  }
  for (const char* name : {"vocab.txt", "tokenizer.json"})
    if (fs::exists(dir / name)) return text::WordPieceTokenizer::load((dir / name).string(), o);
  throw DataError(
      fmt::format("{}: no vocab.txt or tokenizer.json (the WordPiece vocabulary)", dir.string()));
}

}  // namespace

BertImport import_bert(const std::string& folder) {
  const fs::path dir(folder);
  const fs::path cfg_path = dir / "config.json";
  GAZE_CHECK(fs::exists(cfg_path), DataError,
             "{}: no config.json (expected a Hugging Face model folder: config.json, "
             "model.safetensors, vocab.txt)",
             folder);
  const json c = tasks::read_json_file(cfg_path.string());
  GAZE_CHECK(c.is_object(), DataError, "{}: expected a JSON object", cfg_path.string());
  const std::string type = c.value("model_type", "");
  GAZE_CHECK(type == "bert" || type == "distilbert", DataError,
             "{}: model_type '{}'; gaze imports bert and distilbert", cfg_path.string(), type);
  const bool distil = type == "distilbert";
  const fs::path weights = dir / "model.safetensors";
  GAZE_CHECK(fs::exists(weights), DataError,
             "{}: missing (only safetensors weights are read; convert pytorch_model.bin with "
             "Hugging Face's save_pretrained(safe_serialization=True))",
             weights.string());

  models::SentenceEncoderConfig m;
  m.vocab_size = key(c, "vocab_size", cfg_path);
  m.d_model = key(c, distil ? "dim" : "hidden_size", cfg_path);
  m.nhead = key(c, distil ? "n_heads" : "num_attention_heads", cfg_path);
  m.num_layers = key(c, distil ? "n_layers" : "num_hidden_layers", cfg_path);
  m.dim_feedforward = key(c, distil ? "hidden_dim" : "intermediate_size", cfg_path);
  m.max_positions = key(c, "max_position_embeddings", cfg_path);
  m.pad_id = c.contains("pad_token_id") ? key(c, "pad_token_id", cfg_path, 0, m.vocab_size - 1) : 0;
  m.dropout = c.value(distil ? "dropout" : "hidden_dropout_prob", 0.1);
  m.layer_norm_eps = distil ? 1e-12 : c.value("layer_norm_eps", 1e-12);
  m.activation = activation(c.value(distil ? "activation" : "hidden_act", "gelu"), cfg_path);
  GAZE_CHECK(m.d_model % m.nhead == 0, DataError, "{}: the width {} is not a multiple of {} heads",
             cfg_path.string(), m.d_model, m.nhead);
  GAZE_CHECK(c.value("position_embedding_type", "absolute") == "absolute", DataError,
             "{}: position_embedding_type '{}' (gaze maps absolute positions)", cfg_path.string(),
             c.value("position_embedding_type", ""));
  m.positions = models::Positions::learned;
  m.norm_first = false, m.final_norm = false, m.scale_embeddings = false;
  m.embedding_norm = true;
  m.token_types = distil ? 0 : key(c, "type_vocab_size", cfg_path, 0, 1024);
  m.pooling = models::Pooling::cls;
  m.normalize = false;

  // The weights sit under "bert." / "distilbert." in task checkpoints (BertForX), bare otherwise.
  const std::string prefix = type + ".";
  Checkpoint ck(weights, prefix);
  const int64_t d = m.d_model, ff = m.dim_feedforward;
  NamedTensors s;
  s.emplace_back("embedding.weight",
                 ck.take("embeddings.word_embeddings.weight", Shape{m.vocab_size, d}));
  s.emplace_back("positions.weight",
                 ck.take("embeddings.position_embeddings.weight", Shape{m.max_positions, d}));
  if (m.token_types > 0)
    s.emplace_back("token_type_embedding.weight",
                   ck.take("embeddings.token_type_embeddings.weight", Shape{m.token_types, d}));
  put_norm(s, "embedding_norm", ck, "embeddings.LayerNorm", d);
  for (int64_t l = 0; l < m.num_layers; ++l) {
    const std::string at = fmt::format("encoder.layers.{}.", l);
    if (distil) {
      const std::string h = fmt::format("transformer.layer.{}.", l);
      put_attention(s, at, ck, h + "attention.q_lin", h + "attention.k_lin", h + "attention.v_lin",
                    d);
      put_linear(s, at + "self_attn.out_proj", ck, h + "attention.out_lin", d, d);
      put_norm(s, at + "norm1", ck, h + "sa_layer_norm", d);
      put_linear(s, at + "linear1", ck, h + "ffn.lin1", d, ff);
      put_linear(s, at + "linear2", ck, h + "ffn.lin2", ff, d);
      put_norm(s, at + "norm2", ck, h + "output_layer_norm", d);
    } else {
      const std::string h = fmt::format("encoder.layer.{}.", l);
      put_attention(s, at, ck, h + "attention.self.query", h + "attention.self.key",
                    h + "attention.self.value", d);
      put_linear(s, at + "self_attn.out_proj", ck, h + "attention.output.dense", d, d);
      put_norm(s, at + "norm1", ck, h + "attention.output.LayerNorm", d);
      put_linear(s, at + "linear1", ck, h + "intermediate.dense", d, ff);
      put_linear(s, at + "linear2", ck, h + "output.dense", ff, d);
      put_norm(s, at + "norm2", ck, h + "output.LayerNorm", d);
    }
  }
  // BERT's pooler (dense + tanh on [CLS]) when the checkpoint has one; DistilBERT has none.
  m.pooler = !distil && ck.has("pooler.dense.weight") ? models::Pooler::tanh : models::Pooler::none;
  if (m.pooler == models::Pooler::tanh) put_linear(s, "pooler", ck, "pooler.dense", d, d);
  BertImport out;
  out.model_type = type;
  out.ignored = ck.rest({"cls.", "classifier.", "pre_classifier.", "qa_outputs.",
                         "vocab_transform.", "vocab_layer_norm.", "vocab_projector.", "dropout."});

  auto model = std::make_shared<models::SentenceEncoder>(m);
  {
    NoGradGuard no_grad;
    model->load_state_dict(s);
  }
  model->eval();
  std::shared_ptr<text::Tokenizer> tok = tokenizer_of(dir);
  GAZE_CHECK(tok->vocab_size() == m.vocab_size, DataError,
             "{}: the vocabulary has {} pieces but config.json's vocab_size is {}", folder,
             tok->vocab_size(), m.vocab_size);
  out.predictor = std::make_unique<tasks::EmbedPredictor>(std::move(tok), std::move(model),
                                                          m.max_positions, 4096);
  return out;
}

}  // namespace gaze::imports
