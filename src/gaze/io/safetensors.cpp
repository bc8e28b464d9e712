#include "gaze/io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "gaze/core/allocator.h"
#include "gaze/core/error.h"
#include "gaze/core/storage.h"
#include "gaze/io/files.h"
#include "gaze/kernels/lowp_gemm.h"

namespace gaze::io {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeader = 100ull << 20;  // the safetensors library's own limit

const char* dtype_tag(DType t) {
  switch (t) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
    case DType::i64:
      return "I64";
    case DType::b8:
      return "BOOL";
  }
  return "?";
}

struct DtypeInfo {
  size_t size;
  DType to;  // what gaze stores it as
};

std::optional<DtypeInfo> dtype_info(const std::string& tag) {
  if (tag == "F32") return DtypeInfo{4, DType::f32};
  if (tag == "F64") return DtypeInfo{8, DType::f64};
  if (tag == "I64") return DtypeInfo{8, DType::i64};
  if (tag == "BOOL") return DtypeInfo{1, DType::b8};
  if (tag == "F16" || tag == "BF16") return DtypeInfo{2, DType::f32};
  if (tag == "I32") return DtypeInfo{4, DType::i64};
  if (tag == "I16") return DtypeInfo{2, DType::i64};
  if (tag == "I8" || tag == "U8") return DtypeInfo{1, DType::i64};
  return std::nullopt;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      uint32_t m = mant;
      do {
        ++e;
        m <<= 1;
      } while (!(m & 0x400));
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (m & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Whether gaze stores a tensor of this dtype as the file holds it (no conversion).
bool kept_as_is(const std::string& tag) {
  return tag == "F32" || tag == "F64" || tag == "I64";
}

// Reads one tensor's bytes, from `offset` of `file`, through a buffer that is then widened to the
// dtype gaze stores it in.
Tensor decode(const FileReader& file, uint64_t offset, const std::string& tag,
              const DtypeInfo& info, const Shape& shape) {
  Tensor t = Tensor::empty(shape, info.to);
  const int64_t n = shape.numel();
  const size_t nbytes = static_cast<size_t>(n) * info.size;
  std::vector<char> buf(nbytes);
  file.read_at(offset, nbytes, buf.data());
  const char* src = buf.data();
  if (tag == "BOOL") {
    for (int64_t i = 0; i < n; ++i) t.data<bool>()[i] = src[i] != 0;
  } else if (tag == "BF16") {
    kernels::bf16_to_float(src, t.data<float>(), n);
  } else if (tag == "F16") {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      t.data<float>()[i] = half_to_float(h);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      // memcpy: the data of a tensor need not be aligned for its type.
      int64_t v = 0;
      if (tag == "I32") {
        int32_t x;
        std::memcpy(&x, src + 4 * i, 4);
        v = x;
      } else if (tag == "I16") {
        int16_t x;
        std::memcpy(&x, src + 2 * i, 2);
        v = x;
      } else if (tag == "I8") {
        v = static_cast<int8_t>(src[i]);
      } else {
        v = static_cast<uint8_t>(src[i]);
      }
      t.data<int64_t>()[i] = v;
    }
  }
  return t;
}

}  // namespace

namespace {

// The bytes of `t` narrowed as `as` says (see StoreAs).
std::string narrowed(const std::string& path, const std::string& name, const Tensor& t,
                     StoreAs as) {
  const size_t n = static_cast<size_t>(t.numel());
  std::string out;
  if (as == StoreAs::i8) {
    GAZE_CHECK(t.dtype() == DType::i64, ValueError, "{}: '{}' must be int64 to store as I8", path,
               name);
    out.resize(n);
    const int64_t* v = t.data<int64_t>();
    for (size_t i = 0; i < n; ++i) {
      GAZE_CHECK(v[i] >= -128 && v[i] <= 127, ValueError, "{}: '{}' holds {}, outside int8", path,
                 name, v[i]);
      out[i] = static_cast<char>(static_cast<int8_t>(v[i]));
    }
  } else {
    GAZE_CHECK(t.dtype() == DType::f32, ValueError, "{}: '{}' must be float32 to store as BF16",
               path, name);
    out.resize(2 * n);
    const float* v = t.data<float>();
    for (size_t i = 0; i < n; ++i) {
      uint32_t bits;
      std::memcpy(&bits, v + i, 4);
      GAZE_CHECK((bits & 0xffffu) == 0, ValueError,
                 "{}: '{}' holds {}, which is not a bfloat16 number", path, name, v[i]);
      out[2 * i] = static_cast<char>((bits >> 16) & 0xff);
      out[2 * i + 1] = static_cast<char>(bits >> 24);
    }
  }
  return out;
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata,
                      const std::map<std::string, StoreAs>& store_as) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::map<std::string, std::string> narrow;  // the narrowed tensors' bytes
  for (const auto& [name, t] : tensors) {
    GAZE_CHECK(t.defined(), ValueError, "{}: tensor '{}' is undefined", path, name);
    GAZE_CHECK(name != "__metadata__" && !header.contains(name), ValueError,
               "{}: duplicate or reserved tensor name '{}'", path, name);
    const auto as = store_as.find(name);
    size_t bytes = t.nbytes();
    const char* tag = dtype_tag(t.dtype());
    if (as != store_as.end()) {
      bytes = (narrow[name] = narrowed(path, name, t, as->second)).size();
      tag = as->second == StoreAs::i8 ? "I8" : "BF16";
    }
    header[name] = {
        {"dtype", tag}, {"shape", t.shape().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8,
           ' ');  // data starts 8-byte aligned, as the reference writer does
  const uint64_t len = h.size();
  unsigned char len_le[8];
  for (int i = 0; i < 8; ++i) len_le[i] = static_cast<unsigned char>(len >> (8 * i));
  std::vector<std::pair<const void*, size_t>> parts{{len_le, 8}, {h.data(), h.size()}};
  for (const auto& [name, t] : tensors) {
    if (const auto it = narrow.find(name); it != narrow.end())
      parts.emplace_back(it->second.data(), it->second.size());
    else
      parts.emplace_back(t.raw_data(), t.nbytes());
  }
  write_atomic(path, parts);
}

namespace {

// The JSON header of a safetensors file and its length in bytes (the data start 8 bytes later).
std::pair<json, uint64_t> read_header(const FileReader& file) {
  const std::string& path = file.path();
  GAZE_CHECK(file.size() >= 8, DataError,
             "{}: {} bytes is too short for a safetensors file (truncated?)", path, file.size());
  unsigned char head[8] = {};
  file.read_at(0, 8, head);
  uint64_t len = 0;
  for (int i = 0; i < 8; ++i) len |= static_cast<uint64_t>(head[i]) << (8 * i);
  GAZE_CHECK(len <= file.size() - 8, DataError,
             "{}: header length {} exceeds the file size {} (truncated, or not a safetensors file)",
             path, len, file.size());
  GAZE_CHECK(len <= kMaxHeader, DataError,
             "{}: header length {} is more than the {} bytes a safetensors header may have", path,
             len, kMaxHeader);
  std::string text(static_cast<size_t>(len), '\0');
  file.read_at(8, text.size(), text.data());
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: the header is not valid JSON ({})", path, e.what()));
  }
  return {std::move(header), len};
}

}  // namespace

std::map<std::string, std::string> read_safetensors_metadata(const std::string& path) {
  const json header = read_header(FileReader(path)).first;
  std::map<std::string, std::string> out;
  if (header.is_object() && header.contains("__metadata__") && header["__metadata__"].is_object())
    for (const auto& [k, v] : header["__metadata__"].items())
      if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

SafetensorsFile load_safetensors(const std::string& path, const SafetensorsReadOptions& options) {
  const FileReader file(path, kMaxFileBytes);
  const auto [header, len] = read_header(file);
  GAZE_CHECK(header.is_object(), DataError, "{}: the header must be a JSON object", path);
  const uint64_t data = 8 + len, data_size = file.size() - 8 - len;
  SafetensorsFile out;
  // Every entry is checked, and the ranges for overlaps, before any tensor is allocated: a header
  // naming one range many times must not cost a tensor each first.
  struct Entry {
    std::string name, tag;
    DtypeInfo info;
    Shape shape;
    uint64_t b, e;
  };
  std::vector<Entry> entries;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      GAZE_CHECK(v.is_object(), DataError, "{}: __metadata__ must be an object of strings", path);
      for (auto m = v.begin(); m != v.end(); ++m) {
        GAZE_CHECK(m.value().is_string(), DataError, "{}: __metadata__ value '{}' is not a string",
                   path, m.key());
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    GAZE_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") &&
                   v.contains("data_offsets") && v["dtype"].is_string() && v["shape"].is_array() &&
                   v["data_offsets"].is_array() && v["data_offsets"].size() == 2,
               DataError, "{}: tensor '{}' needs \"dtype\", \"shape\" and two \"data_offsets\"",
               path, name);
    const std::string tag = v["dtype"].get<std::string>();
    const auto info = dtype_info(tag);
    GAZE_CHECK(info.has_value(), DataError, "{}: tensor '{}' has unsupported dtype {}", path, name,
               tag);
    std::vector<int64_t> dims;
    for (const json& d : v["shape"]) {
      GAZE_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
                 DataError, "{}: tensor '{}' has an invalid shape {}", path, name,
                 v["shape"].dump());
      dims.push_back(d.get<int64_t>());
    }
    GAZE_CHECK(dims.size() <= static_cast<size_t>(Shape::kMaxDims), DataError,
               "{}: tensor '{}' has {} dims (at most {})", path, name, dims.size(),
               Shape::kMaxDims);
    Shape shape;
    try {
      shape = Shape(dims);
    } catch (const ValueError& e) {
      throw DataError(fmt::format("{}: tensor '{}': {}", path, name, e.what()));
    }
    const json& o = v["data_offsets"];
    GAZE_CHECK(o[0].is_number_unsigned() && o[1].is_number_unsigned(), DataError,
               "{}: tensor '{}' has invalid data_offsets {}", path, name, o.dump());
    const uint64_t b = o[0].get<uint64_t>(), e = o[1].get<uint64_t>();
    GAZE_CHECK(b <= e && e <= data_size, DataError,
               "{}: tensor '{}' data [{}, {}) lies outside the {} bytes of data (truncated file?)",
               path, name, b, e, data_size);
    GAZE_CHECK(e - b == static_cast<uint64_t>(shape.numel()) * info->size, DataError,
               "{}: tensor '{}' has {} bytes but {} {} needs {}", path, name, e - b, tag,
               shape.str(), static_cast<uint64_t>(shape.numel()) * info->size);
    ranges.emplace_back(b, e);
    entries.push_back({name, tag, *info, shape, b, e});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    GAZE_CHECK(ranges[i].first >= ranges[i - 1].second, DataError,
               "{}: tensor data ranges overlap at byte {}", path, ranges[i].first);
  // The ranges are disjoint and inside the file: what is read below is at most its size.
  // Tensors kept as they are (a checkpoint's float32 weights) are read straight into one block,
  // each at a 64-byte aligned place and its own storage borrowed from the block, which they keep
  // alive together. One block of the whole size takes 2 MiB pages (allocator.h); a block per
  // tensor cost a page fault per 4 KiB, 5.3k of the 8.5k faults of loading the bench translator.
  constexpr uint64_t kAlign = allocator::kAlignment;
  uint64_t block_bytes = 0;
  for (const Entry& en : entries)
    if (kept_as_is(en.tag)) block_bytes += (en.e - en.b + kAlign - 1) / kAlign * kAlign;
  const std::shared_ptr<Storage> block =
      Storage::allocate(static_cast<size_t>(block_bytes));  // at most the file's size + 64 B each
  uint64_t at = 0;
  for (const Entry& en : entries) {
    if (kept_as_is(en.tag)) {
      char* p = static_cast<char*>(block->data()) + at;
      file.read_at(data + en.b, static_cast<size_t>(en.e - en.b), p);
      out.tensors.emplace_back(en.name, Tensor::from_blob(p, en.shape, en.info.to, block));
      at += (en.e - en.b + kAlign - 1) / kAlign * kAlign;
      continue;
    }
    if (options.keep_int8 && en.tag == "I8") {
      Int8Tensor& t = out.int8[en.name];
      t.shape = en.shape;
      t.values.resize(static_cast<size_t>(en.e - en.b));
      file.read_at(data + en.b, t.values.size(), t.values.data());
      continue;
    }
    if (options.keep_bf16 && en.tag == "BF16") {
      Bf16Tensor& t = out.bf16[en.name];
      t.shape = en.shape;
      t.bits.resize(static_cast<size_t>(en.e - en.b) / 2);  // little-endian, as the host
      file.read_at(data + en.b, static_cast<size_t>(en.e - en.b), t.bits.data());
      continue;
    }
    out.tensors.emplace_back(en.name, decode(file, data + en.b, en.tag, en.info, en.shape));
  }
  return out;
}

}  // namespace gaze::io
