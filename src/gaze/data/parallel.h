// Parallel text for translation: source and target as two columns of a TSV/JSONL file (named in
// the configuration), or as two files aligned line by line.
#pragma once

#include <string>
#include <vector>

#include "gaze/data/classification.h"

namespace gaze::data {

struct ParallelFormat {
  FileFormat format = FileFormat::detect;
  std::string source_column = "source", target_column = "target";
};

struct SentencePair {
  std::string source, target;
  int64_t line = 0;  // 1-based
};

// From one TSV/JSONL file with both columns.
std::vector<SentencePair> read_parallel(const std::string& path, const ParallelFormat& format);
// From two files aligned line by line; empty lines and different line counts are DataErrors.
std::vector<SentencePair> read_parallel(const std::string& source_path,
                                        const std::string& target_path);

}  // namespace gaze::data
