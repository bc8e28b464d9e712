// The models gaze trains: each is an nn::Module with a typed configuration that serialises to the
// checkpoint's config.json, so a model can be rebuilt from its checkpoint alone.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gaze/nn/module.h"

namespace gaze::models {

class Model : public nn::Module {
 public:
  using Module::Module;
  // The configuration as JSON, with "model_type" naming the class.
  virtual std::string config_json() const = 0;
};

// Builds a freshly initialised model from a configuration (as written by config_json()).
std::shared_ptr<Model> build_model(const std::string& config_json);
// Builds the model described by dir/config.json and loads dir/model.safetensors into it (strict).
std::shared_ptr<Model> load_model(const std::string& dir);

// [B, T] bool, true past each sequence's length (key padding); undefined if lengths is undefined.
Tensor padding_mask(const Tensor& lengths, int64_t T);

}  // namespace gaze::models
