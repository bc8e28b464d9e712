// YAML configuration files resolved into typed structs: a tree of sections whose fields are
// config::Field, read strictly (unknown keys, duplicates and wrong types are errors naming the
// file, the line and the valid keys), with `a.b=value` overrides and a dump of the resolved tree.
#pragma once

#include <string>
#include <vector>

#include "gaze/io/config.h"

namespace gaze::config {

struct Section {
  std::string name;
  std::vector<Field> fields;
  std::vector<Section> sections;

  Section& add(Section s) {
    sections.push_back(std::move(s));
    return sections.back();
  }
};

// Fills `root` from YAML text (missing keys keep their defaults); `source` (the file name) starts
// every message, with the line: "run.yaml:12: unknown key 'lr_rate' in train; valid keys: ...".
void read_yaml(const std::string& text, const std::string& source, const Section& root);
// Reads a YAML file (DataError if it cannot be read).
void read_yaml_file(const std::string& path, const Section& root);
// Applies "a.b.c=value" (value read as a YAML scalar) to the field at that path.
void apply_override(const Section& root, const std::string& assignment);
// The resolved tree as YAML, every field with its value.
std::string dump_yaml(const Section& root);
// Every field's dotted path ("train.lr"), in order; for documentation and tests.
std::vector<std::string> field_paths(const Section& root);

}  // namespace gaze::config
