// Labelled texts for classification: TSV with a header row naming the columns, or JSON Lines with
// one object per line; the text and label columns (fields) are named in the run's configuration.
#pragma once

#include <string>
#include <vector>

#include "gaze/core/enums.h"

namespace gaze::data {

// A table's file format; detect: from the file name (.jsonl/.json -> jsonl, else tsv).
// csv: RFC 4180 (comma-separated, fields in double quotes may hold commas, "" and line breaks).
enum class FileFormat { detect, tsv, jsonl, csv };
GAZE_ENUM_NAMES(FileFormat, {FileFormat::detect, "auto"}, {FileFormat::tsv, "tsv"},
                {FileFormat::jsonl, "jsonl"}, {FileFormat::csv, "csv"})
// The format of `path`: `format`, or what its name says when `format` is detect (.jsonl/.json,
// .csv, else TSV).
FileFormat resolve_format(const std::string& path, FileFormat format);

struct ClassificationFormat {
  FileFormat format = FileFormat::detect;
  std::string text_column = "text";
  std::string label_column = "label";
};

struct LabeledText {
  std::string text;
  std::string label;  // empty when the file has no label column and labels are not required
  int64_t line = 0;   // 1-based line in the file
};

// Reads every example. Malformed lines, missing columns, empty texts and (when require_labels)
// missing labels are DataErrors naming `file:line`.
std::vector<LabeledText> read_classification(const std::string& path,
                                             const ClassificationFormat& format,
                                             bool require_labels = true);

// Unlabelled texts for prediction: one per line, or the text column/field of a TSV/JSONL file.
std::vector<LabeledText> read_texts(const std::string& path, const ClassificationFormat& format);

}  // namespace gaze::data
