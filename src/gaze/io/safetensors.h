// safetensors files (the Hugging Face format): an 8-byte little-endian header length, a JSON header
// with each tensor's dtype, shape and data offsets (plus "__metadata__" strings), then the raw
// data. Writes are atomic; reads validate everything and name the file and the problem.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "gaze/core/named_tensors.h"

namespace gaze::io {

struct Int8Tensor {
  Shape shape;
  std::vector<int8_t> values;
};

struct Bf16Tensor {
  Shape shape;
  std::vector<uint16_t> bits;  // bfloat16 bit patterns
};

struct SafetensorsFile {
  NamedTensors tensors;                         // in file order
  std::map<std::string, std::string> metadata;  // the "__metadata__" strings
  std::map<std::string, Int8Tensor> int8;       // I8 tensors, with keep_int8
  std::map<std::string, Bf16Tensor> bf16;       // BF16 tensors, with keep_bf16
};

struct SafetensorsReadOptions {
  // I8 tensors go to SafetensorsFile::int8 as they are (1 byte each) instead of being widened to
  // int64 tensors (8 bytes each): quantized weights are read at their own size.
  bool keep_int8 = false;
  // BF16 tensors go to SafetensorsFile::bf16 as their bit patterns instead of being widened to
  // float32 tensors.
  bool keep_bf16 = false;
};

// How a tensor is written when not in its own dtype: int64 values in [-128, 127] as I8, float32
// values that are bfloat16 numbers (the low 16 bits zero) as BF16. Anything else is a ValueError.
enum class StoreAs { i8, bf16 };

// Writes `tensors` (float32, float64, int64 or bool; those named in `store_as` narrowed) and
// `metadata` to `path`: first to a temporary file beside it, flushed to disk, then renamed over
// `path`, so a crash never leaves a partial file.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {},
                      const std::map<std::string, StoreAs>& store_as = {});

// Reads a file written by gaze or by the safetensors library. F16, BF16, I32, I16, I8 and U8
// tensors are widened to float32 / int64. Throws DataError ("path: what is wrong") for anything
// malformed: truncation, a header longer than the file, bad JSON, unknown dtypes, offsets out of
// bounds or overlapping, sizes that disagree with the shapes.
SafetensorsFile load_safetensors(const std::string& path,
                                 const SafetensorsReadOptions& options = {});

// Only the "__metadata__" of a safetensors file, reading its header and nothing more (a training
// state's progress without its moments). DataError for a malformed header.
std::map<std::string, std::string> read_safetensors_metadata(const std::string& path);

}  // namespace gaze::io
