#include "gaze/io/tfjs_weights.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gaze/core/error.h"
#include "gaze/core/shape.h"
#include "gaze/io/files.h"

namespace gaze::io {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxBytes = uint64_t{1} << 36;  // 64 GiB: beyond any model this reads

uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& where) {
  GAZE_CHECK(b == 0 || a <= kMaxBytes / b, DataError, "{}: size overflows", where);
  return a * b;
}

}  // namespace

NamedTensors read_tfjs_weights(const std::string& model_json) {
  GAZE_CHECK(fs::is_regular_file(model_json), DataError, "{}: no such file", model_json);
  GAZE_CHECK(fs::file_size(model_json) <= (uint64_t{1} << 28), DataError,
             "{}: larger than 256 MiB; not a TF.js model.json", model_json);
  json j;
  try {
    j = json::parse(read_file(model_json, kMaxMetadataBytes));
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: not valid JSON ({})", model_json, e.what()));
  }
  GAZE_CHECK(j.is_object() && j.contains("weightsManifest") && j["weightsManifest"].is_array(),
             DataError, "{}: no \"weightsManifest\" list (not a TF.js model)", model_json);
  const fs::path dir = fs::path(model_json).parent_path();
  NamedTensors out;
  for (size_t g = 0; g < j["weightsManifest"].size(); ++g) {
    const json& group = j["weightsManifest"][g];
    const std::string where = fmt::format("{}: weightsManifest[{}]", model_json, g);
    GAZE_CHECK(group.is_object() && group.contains("paths") && group["paths"].is_array() &&
                   group.contains("weights") && group["weights"].is_array(),
               DataError, "{}: expected {{\"paths\": [...], \"weights\": [...]}}", where);
    // The group's shards, concatenated.
    std::string data;
    for (const auto& p : group["paths"]) {
      GAZE_CHECK(p.is_string(), DataError, "{}: shard paths must be strings", where);
      const std::string name = p.get<std::string>();
      GAZE_CHECK(!name.empty() && name.find('/') == std::string::npos &&
                     name.find('\\') == std::string::npos && name != "." && name != "..",
                 DataError, "{}: shard '{}' is not a file name beside model.json", where, name);
      const fs::path shard = dir / name;
      GAZE_CHECK(fs::is_regular_file(shard), DataError, "{}: missing shard file {}", where,
                 shard.string());
      GAZE_CHECK(data.size() + fs::file_size(shard) <= kMaxBytes, DataError,
                 "{}: the shards exceed {} bytes", where, kMaxBytes);
      data += read_file(shard.string());
    }
    uint64_t offset = 0;
    for (const auto& w : group["weights"]) {
      GAZE_CHECK(w.is_object() && w.contains("name") && w["name"].is_string() &&
                     w.contains("shape") && w["shape"].is_array() && w.contains("dtype") &&
                     w["dtype"].is_string(),
                 DataError, "{}: an entry lacks its name, shape or dtype: {}", where,
                 w.dump().substr(0, 120));
      const std::string name = w["name"].get<std::string>();
      const std::string dtype = w["dtype"].get<std::string>();
      const std::string at = fmt::format("{} entry '{}'", where, name);
      GAZE_CHECK(!w.contains("quantization"), DataError,
                 "{}: quantized weights are not supported (re-export the model unquantized)", at);
      GAZE_CHECK(dtype == "float32" || dtype == "int32", DataError,
                 "{}: dtype {} (gaze reads float32 and int32)", at, dtype);
      std::vector<int64_t> dims;
      uint64_t n = 1;
      for (const auto& d : w["shape"]) {
        GAZE_CHECK(d.is_number_integer() && d.get<int64_t>() >= 0, DataError,
                   "{}: shape {} has a non-integer or negative size", at, w["shape"].dump());
        dims.push_back(d.get<int64_t>());
        n = checked_mul(n, static_cast<uint64_t>(dims.back()), at);
      }
      const uint64_t bytes = checked_mul(n, 4, at);
      GAZE_CHECK(offset + bytes <= data.size(), DataError,
                 "{}: needs bytes {}..{} but the shards hold {} (a truncated or missing shard?)",
                 at, offset, offset + bytes, data.size());
      const Shape shape(dims);
      Tensor t;
      if (dtype == "float32") {
        t = Tensor::empty(shape, DType::f32);
        std::memcpy(t.data<float>(), data.data() + offset, bytes);
      } else {
        t = Tensor::empty(shape, DType::i64);
        for (uint64_t i = 0; i < n; ++i) {
          int32_t v;
          std::memcpy(&v, data.data() + offset + 4 * i, 4);
          t.data<int64_t>()[i] = v;
        }
      }
      offset += bytes;
      out.emplace_back(name, std::move(t));
    }
    GAZE_CHECK(offset == data.size(), DataError,
               "{}: the shards hold {} bytes but the entries take {} (a manifest that does not "
               "match its shards)",
               where, data.size(), offset);
  }
  return out;
}

}  // namespace gaze::io
