// Data: the fixed split, length-bucketed batching (every example once, within the token budget,
// reproducible from the seed), YAML configurations, the classification report, CoNLL and parallel
// readers, and class weights.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <algorithm>
#include <set>

#include <unistd.h>

#include "gaze/core/allocator.h"
#include "gaze/core/error.h"
#include "gaze/data/batching.h"
#include "gaze/data/conll.h"
#include "gaze/data/parallel.h"
#include "gaze/data/split.h"
#include "gaze/io/checkpoint.h"
#include "gaze/io/files.h"
#include "gaze/io/safetensors.h"
#include "gaze/io/yaml_config.h"
#include "gaze/metrics/classification.h"
#include "gaze/tasks/task.h"

namespace gaze {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid())))
      .string();
}

TEST(FileReader, ReadsRangesAndNamesAFileThatShrankWhileOpen) {
  const std::string path = temp_path("gaze-file-reader");
  io::write_file_atomic(path, "0123456789");
  {
    const io::FileReader f(path);
    EXPECT_EQ(f.size(), 10u);
    char buf[4] = {};
    f.read_at(3, 4, buf);
    EXPECT_EQ(std::string(buf, 4), "3456");
    std::filesystem::resize_file(path, 5);  // another process truncates it while it is open
    try {
      f.read_at(3, 4, buf);
      ADD_FAILURE() << "read past the new end";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(path + ": the file ends at byte 5"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(io::FileReader(std::filesystem::temp_directory_path().string()), DataError);
  EXPECT_THROW(io::FileReader(path + "-missing"), DataError);
  std::filesystem::remove(path);
}

TEST(Safetensors, ReadsEachTensorIntoItsStorageAndWidensNarrowOnes) {
  const std::string path = temp_path("gaze-st.safetensors");
  const Tensor w = Tensor::from_vector<float>({1.5f, -2.0f, 0.25f, 3.0f, 0.0f, -0.5f}, Shape{2, 3});
  const Tensor ids = Tensor::from_vector<int64_t>({-3, 7, 120}, Shape{3});
  const Tensor empty = Tensor::empty(Shape{0, 4});
  io::save_safetensors(path, {{"w", w}, {"ids", ids}, {"empty", empty}, {"w16", w}},
                       {{"note", "x"}}, {{"ids", io::StoreAs::i8}, {"w16", io::StoreAs::bf16}});
  const io::SafetensorsFile f = io::load_safetensors(path);
  ASSERT_EQ(f.tensors.size(), 4u);
  EXPECT_EQ(f.metadata.at("note"), "x");
  for (const auto& [name, t] : f.tensors) {
    if (name == "ids") {
      EXPECT_EQ(t.to_vector<int64_t>(), ids.to_vector<int64_t>());
    } else if (name == "empty") {
      EXPECT_EQ(t.shape(), (Shape{0, 4}));
    } else {
      EXPECT_EQ(t.to_vector<float>(), w.to_vector<float>()) << name;
    }
    // Each a whole storage of its own at a 64-byte boundary (one block holds the file's float32
    // and int64 tensors): a weight can take a reduced-precision form, and SIMD loads stay aligned.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % allocator::kAlignment, 0u) << name;
    EXPECT_EQ(t.storage()->nbytes(), static_cast<size_t>(t.numel()) * dtype_size(t.dtype()));
  }
  // One tensor keeps the whole block alive after the others are gone, and frees it last.
  const size_t before = allocator::stats().bytes_in_use;
  Tensor kept;
  {
    const io::SafetensorsFile g = io::load_safetensors(path);
    for (const auto& [name, t] : g.tensors)
      if (name == "w") kept = t;
  }
  EXPECT_GT(allocator::stats().bytes_in_use, before);
  const std::vector<float> kept_values = kept.to_vector<float>();
  EXPECT_EQ(kept_values, w.to_vector<float>());
  kept = Tensor();
  EXPECT_EQ(allocator::stats().bytes_in_use, before);
  // Quantized weights' I8 values kept at one byte each.
  const io::SafetensorsFile q = io::load_safetensors(path, {.keep_int8 = true});
  EXPECT_EQ(q.int8.at("ids").values, (std::vector<int8_t>{-3, 7, 120}));
  EXPECT_EQ(q.int8.at("ids").shape, (Shape{3}));
  EXPECT_EQ(q.tensors.size(), 3u);
  // And BF16 ones as their bit patterns: 1.5 is 0x3fc0 as a bfloat16.
  const io::SafetensorsFile b = io::load_safetensors(path, {.keep_bf16 = true});
  EXPECT_EQ(b.bf16.at("w16").shape, (Shape{2, 3}));
  EXPECT_EQ(b.bf16.at("w16").bits,
            (std::vector<uint16_t>{0x3fc0, 0xc000, 0x3e80, 0x4040, 0x0000, 0xbf00}));
  EXPECT_EQ(b.tensors.size(), 3u);
  // A checkpoint keeps quantized matrices' bits; a BF16 tensor that is none is float32 as before.
  const std::filesystem::path dir = temp_path("gaze-st-checkpoint");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(path, dir / "model.safetensors");
  const io::Checkpoint ck = io::load_checkpoint(dir.string());
  ASSERT_EQ(ck.model.size(), 4u);
  for (const auto& [name, t] : ck.model)
    if (name == "w16") EXPECT_EQ(t.to_vector<float>(), w.to_vector<float>());
  EXPECT_TRUE(ck.lowp.empty());
  std::filesystem::remove_all(dir);
  // Cut inside the last tensor's data: named as a truncated file, not read past the end.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 2);
  EXPECT_THROW(io::load_safetensors(path), DataError);
  // Larger than any checkpoint gaze reads (sparse: no disk is used).
  std::filesystem::resize_file(path, io::kMaxFileBytes + 1);
  try {
    io::load_safetensors(path);
    ADD_FAILURE() << "read a file over the limit";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("bytes allowed here"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

TEST(Safetensors, ChecksEveryRangeBeforeAllocatingAnyTensor) {
  // One 1 MiB range named by 64 tensors: refused as overlapping, without 64 MiB of tensors first.
  const std::string path = temp_path("gaze-st-overlap.safetensors");
  std::string header = "{";
  for (int i = 0; i < 64; ++i)
    header += fmt::format(
        "{}\"t{}\":{{\"dtype\":\"F32\",\"shape\":[262144],"
        "\"data_offsets\":[0,1048576]}}",
        i ? "," : "", i);
  header += "}";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i)
    bytes[static_cast<size_t>(i)] = static_cast<char>(header.size() >> (8 * i));
  bytes += header + std::string(size_t{1} << 20, '\0');
  io::write_file_atomic(path, bytes);
  allocator::reset_peak();
  const size_t base = allocator::stats().bytes_in_use;
  try {
    io::load_safetensors(path);
    ADD_FAILURE() << "overlapping ranges were accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("overlap"), std::string::npos) << e.what();
  }
  EXPECT_LT(allocator::stats().peak_bytes_in_use, base + (size_t{1} << 20));
  std::filesystem::remove(path);
}

TEST(Split, Modulo10) {
  std::vector<int> rows(25);
  for (int i = 0; i < 25; ++i) rows[static_cast<size_t>(i)] = i;
  EXPECT_EQ(data::take_split(rows, data::Split::test), (std::vector<int>{0, 10, 20}));
  EXPECT_EQ(data::take_split(rows, data::Split::dev), (std::vector<int>{1, 11, 21}));
  EXPECT_EQ(data::take_split(rows, data::Split::train).size(), 19u);
  EXPECT_THROW(data::parse_split("validation"), DataError);
}

TEST(Batching, EveryExampleOnceWithinBudgetAndReproducible) {
  std::vector<int64_t> lengths;
  for (int i = 0; i < 500; ++i) lengths.push_back(1 + (i * 37) % 90);
  lengths.push_back(400);  // longer than the budget: a batch of its own
  const data::BatchOptions o{256, 16, true};
  Generator g1(5), g2(5), g3(6);
  const auto a = data::make_batches(lengths, o, &g1), b = data::make_batches(lengths, o, &g2),
             c = data::make_batches(lengths, o, &g3);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::multiset<int64_t> seen;
  for (const auto& batch : a) {
    int64_t longest = 0;
    for (const int64_t i : batch) {
      seen.insert(i);
      longest = std::max(longest, lengths[static_cast<size_t>(i)]);
    }
    EXPECT_LE(batch.size(), 16u);
    EXPECT_TRUE(longest * static_cast<int64_t>(batch.size()) <= 256 || batch.size() == 1);
    // Bucketing: lengths within a batch are close (sorted before cutting).
    int64_t shortest = longest;
    for (const int64_t i : batch) shortest = std::min(shortest, lengths[static_cast<size_t>(i)]);
    if (batch.size() > 1) EXPECT_LE(longest - shortest, 10);
  }
  EXPECT_EQ(seen.size(), lengths.size());
  for (int64_t i = 0; i < static_cast<int64_t>(lengths.size()); ++i) EXPECT_EQ(seen.count(i), 1u);
  // Without shuffling the count is the same (the trainer relies on it for the schedule).
  EXPECT_EQ(data::make_batches(lengths, {256, 16, false}, nullptr).size(), a.size());
}

TEST(YamlConfig, StrictTypedOverridableAndClearMessages) {
  int64_t epochs = 3;
  double lr = 0.1;
  bool lower = false;
  std::string name = "x", kind = "a";
  config::Section root;
  root.fields = {config::field("name", name)};
  root.add({"train",
            {config::field("epochs", epochs, 1), config::field("lr", lr),
             config::field("lowercase", lower), config::field("kind", kind, {"a", "b"})},
            {}});
  config::read_yaml("name: 123\ntrain:\n  epochs: 7\n  lr: .5e-3\n  lowercase: true\n  kind: b\n",
                    "c.yaml", root);
  EXPECT_EQ(name, "123");  // a string field keeps a plain scalar as text
  EXPECT_EQ(epochs, 7);
  EXPECT_DOUBLE_EQ(lr, 0.5e-3);
  EXPECT_TRUE(lower);
  EXPECT_EQ(kind, "b");
  config::apply_override(root, "train.lr=2");
  EXPECT_DOUBLE_EQ(lr, 2.0);
  config::apply_override(root, "name='a b'");
  EXPECT_EQ(name, "a b");
  auto message = [&](const std::string& yaml) {
    try {
      config::read_yaml(yaml, "c.yaml", root);
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("train:\n  epoch: 2\n"),
            "c.yaml:2: unknown key 'epoch' in train; valid keys: epochs, lr, lowercase, kind");
  EXPECT_EQ(message("train:\n  epochs: 0\n"),
            "c.yaml:2: 'epochs' must be in [1, 9223372036854775807], got 0");
  EXPECT_EQ(message("train:\n  lowercase: 1\n"),
            "c.yaml:2: 'lowercase' must be true or false, got 1");
  EXPECT_EQ(message("train:\n  kind: c\n"), "c.yaml:2: 'kind' must be one of a, b, got 'c'");
  EXPECT_EQ(message("train: 5\n"), "c.yaml:1: train must be a mapping of keys to values");
  EXPECT_EQ(message("- 1\n- 2\n"), "c.yaml:1: the top level must be a mapping of keys to values");
  EXPECT_NE(message("train: {epochs: [\n").find("c.yaml:"), std::string::npos);
  const std::string dumped = config::dump_yaml(root);
  EXPECT_EQ(dumped,
            "name: \"a b\"\ntrain:\n  epochs: 7\n  lr: 2.0\n  lowercase: true\n  kind: \"b\"\n");
  EXPECT_EQ(config::field_paths(root), (std::vector<std::string>{"name", "train.epochs", "train.lr",
                                                                 "train.lowercase", "train.kind"}));
}

// Enumerated options are enums read and written by name, with the valid names in messages; one
// declaration serves YAML, JSON objects (task.json, Python keyword arguments) and nested objects.
TEST(ConfigFields, EnumsListsAndObjectsByName) {
  decode::SearchOptions search;
  tasks::PredictOptions predict;
  config::Section root{"", {}, {}};
  root.add({"decode", decode::config_fields(search), {}});
  config::read_yaml("decode:\n  method: greedy\n  max_length: 7\n", "d.yaml", root);
  EXPECT_EQ(search.method, decode::SearchMethod::greedy);
  EXPECT_EQ(search.max_length, 7);
  try {
    config::read_yaml("decode:\n  method: beem\n", "d.yaml", root);
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()), "d.yaml:2: 'method' must be one of beam, greedy, got 'beem'");
  }
  EXPECT_NE(config::dump_yaml(root).find("method: \"greedy\""), std::string::npos);
  // A JSON object through the same fields (what Python keyword arguments become).
  config::read_object(R"({"aggregation": "max", "beam_size": 2, "nbest": 2})",
                      tasks::config_fields(predict), "predict");
  EXPECT_EQ(predict.aggregation, tasks::Aggregation::max);
  EXPECT_EQ(predict.search.beam_size, 2);
  EXPECT_THROW(config::read_object(R"({"beamsize": 2})", tasks::config_fields(predict), "p"),
               DataError);
  EXPECT_THROW(config::read_object(R"({"top_k": 0})", tasks::config_fields(predict), "p"),
               DataError);
  // Integer lists and nested objects.
  tasks::ExplainOptions ex;
  config::read_object(R"({"layers": [0, -1], "heads": []})", tasks::config_fields(ex), "e");
  EXPECT_EQ(ex.layers, (std::vector<int64_t>{0, -1}));
  EXPECT_THROW(config::read_object(R"({"layers": [0.5]})", tasks::config_fields(ex), "e"),
               DataError);
  decode::SearchOptions nested;
  const config::Fields outer = {config::object_field("decode", decode::config_fields(nested))};
  config::read_object(R"({"decode": {"method": "greedy", "nbest": 1}})", outer, "task.json");
  EXPECT_EQ(nested.method, decode::SearchMethod::greedy);
  EXPECT_EQ(nested.max_length, 0);  // an older task.json without the key keeps the default
  EXPECT_NE(config::write_object(outer).find(R"("max_length":0)"), std::string::npos);
  EXPECT_EQ(enum_name(data::FileFormat::detect), "auto");
  EXPECT_EQ(enum_from_name<tasks::TagScheme>("auto"), tasks::TagScheme::detect);
  EXPECT_FALSE(enum_from_name<tasks::TagScheme>("bio").has_value());
}

TEST(Metrics, HandWorkedReport) {
  // gold:      a a a b b c
  // predicted: a a b b c c
  const std::vector<std::string> labels = {"a", "b", "c"};
  const auto r = metrics::classification_report({0, 0, 0, 1, 1, 2}, {0, 0, 1, 1, 2, 2}, labels);
  EXPECT_DOUBLE_EQ(r.accuracy, 4.0 / 6);
  EXPECT_DOUBLE_EQ(r.per_class[0].precision, 1.0);
  EXPECT_DOUBLE_EQ(r.per_class[0].recall, 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.per_class[1].precision, 0.5);
  EXPECT_DOUBLE_EQ(r.per_class[1].recall, 0.5);
  EXPECT_DOUBLE_EQ(r.per_class[2].precision, 0.5);
  EXPECT_DOUBLE_EQ(r.per_class[2].f1, 2 * 0.5 * 1.0 / 1.5);
  EXPECT_DOUBLE_EQ(r.macro.recall, (2.0 / 3 + 0.5 + 1.0) / 3);
  EXPECT_DOUBLE_EQ(r.weighted.precision, (3 * 1.0 + 2 * 0.5 + 1 * 0.5) / 6);
  EXPECT_DOUBLE_EQ(r.micro.f1, 4.0 / 6);
  EXPECT_EQ(r.confusion, (std::vector<std::vector<int64_t>>{{2, 1, 0}, {0, 1, 1}, {0, 0, 1}}));
  // A class never predicted and never seen scores 0, not NaN.
  const auto z = metrics::classification_report({0, 0}, {0, 0}, {"a", "b"});
  EXPECT_EQ(z.per_class[1].precision, 0.0);
  EXPECT_EQ(z.per_class[1].f1, 0.0);
  EXPECT_NE(metrics::to_text(r).find("    accuracy                         0.6667         6"),
            std::string::npos)
      << metrics::to_text(r);
}

}  // namespace
}  // namespace gaze

namespace gaze {
namespace {

std::string write_temp(const std::string& name, const std::string& content) {
  const auto path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

TEST(Conll, ColumnsCommentsAndSeparators) {
  const auto path = write_temp("gaze_conll_test.conll",
                               "-DOCSTART- -X- O O\n\n# doc = ca01\tgenre = press\n"
                               "#tag\tX\tO\nEU\tNNP\tB-ORG\n\n\n"
                               "rejects VBZ O\n# a comment\nGerman JJ B-MISC\n");
  const auto s = data::read_conll(path, {0, -1});
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].words,
            (std::vector<std::string>{"#tag", "EU"}));  // "#tag" is a token, "# " a comment
  EXPECT_EQ(s[0].tags, (std::vector<std::string>{"O", "B-ORG"}));
  EXPECT_EQ(s[0].line, 4);
  EXPECT_EQ(s[1].words, (std::vector<std::string>{"rejects", "German"}));  // space-separated lines
  EXPECT_EQ(s[1].tags, (std::vector<std::string>{"O", "B-MISC"}));
  EXPECT_EQ(s[1].lines, (std::vector<int64_t>{8, 10}));
  const auto pos = data::read_conll(path, {0, 1});
  EXPECT_EQ(pos[0].tags, (std::vector<std::string>{"X", "NNP"}));
  EXPECT_THROW(data::read_conll(path, {0, 5}), DataError);
}

TEST(Conll, SplitWordsKeepsCodePointOffsets) {
  const auto w = data::split_words("  Zoë  visited\tMünchen ");
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].word, "Zoë");
  EXPECT_EQ(std::make_pair(w[0].start, w[0].end), std::make_pair(int64_t{2}, int64_t{5}));
  EXPECT_EQ(std::make_pair(w[2].start, w[2].end), std::make_pair(int64_t{15}, int64_t{22}));
}

TEST(Parallel, AlignedFilesMustMatch) {
  const auto src = write_temp("gaze_par.en", "a b\nc d\n\n");  // a trailing empty line is fine
  const auto tgt = write_temp("gaze_par.es", "x y\nz w\n");
  const auto pairs = data::read_parallel(src, tgt);
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[1].source, "c d");
  EXPECT_EQ(pairs[1].target, "z w");
  const auto short_tgt = write_temp("gaze_par_short.es", "x y\n");
  EXPECT_THROW(data::read_parallel(src, short_tgt), DataError);
}

TEST(ClassWeights, BalancedAndSqrt) {
  const std::vector<int64_t> counts{90, 10, 0};
  EXPECT_FALSE(tasks::class_weights(counts, train::ClassWeights::none).defined());
  const auto b = tasks::class_weights(counts, train::ClassWeights::balanced).to_vector<float>();
  EXPECT_NEAR(b[0], 100.0 / (3 * 90), 1e-6);  // scikit-learn: n_samples / (n_classes * count)
  EXPECT_NEAR(b[1], 100.0 / (3 * 10), 1e-6);
  EXPECT_EQ(b[2], 0.0f);
  const auto s = tasks::class_weights(counts, train::ClassWeights::sqrt).to_vector<float>();
  EXPECT_NEAR(s[1], std::sqrt(100.0 / 30), 1e-6);
}

}  // namespace
}  // namespace gaze
