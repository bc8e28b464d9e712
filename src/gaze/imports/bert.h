// Import of Hugging Face BERT-family checkpoints (BERT, DistilBERT): a folder with config.json,
// model.safetensors and vocab.txt (or tokenizer.json) mapped onto gaze's Transformer backbone —
// learned positions, token types, the embeddings' LayerNorm, post-norm layers, GELU, the [CLS]
// pooler — with BertTokenizer's WordPiece, so the model predicts, explains and fine-tunes in gaze.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gaze/tasks/embed_predictor.h"

namespace gaze::imports {

struct BertImport {
  std::unique_ptr<tasks::EmbedPredictor> predictor;  // a sentence encoder ([CLS] + pooler)
  std::string model_type;                            // bert | distilbert
  std::vector<std::string> ignored;  // task heads of the checkpoint left out (cls.*, classifier.*)
};

// DataError naming the file and the key on: an unknown model_type or architecture option, a
// missing weight, a mis-shaped one, an unknown key that is no known task head.
BertImport import_bert(const std::string& folder);

}  // namespace gaze::imports
