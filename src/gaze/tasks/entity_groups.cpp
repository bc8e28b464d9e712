#include "gaze/tasks/entity_groups.h"

#include "gaze/text/utf8.h"

namespace gaze::tasks {
using json = nlohmann::json;

json group_entities(const std::string& text, const std::vector<data::WordSpan>& words,
                    const std::vector<std::string>& tags, const std::vector<float>& scores) {
  // Code-point offsets -> byte offsets, to cut the group's text out of the line.
  std::vector<size_t> byte_at;
  size_t pos = 0;
  for (const std::string& ch : text::split_chars(text)) byte_at.push_back(pos), pos += ch.size();
  byte_at.push_back(pos);
  auto split = [](const std::string& tag) -> std::pair<char, std::string> {
    if (tag.size() > 2 && tag[1] == '-' && std::string("BIES").find(tag[0]) != std::string::npos)
      return {tag[0] == 'B' || tag[0] == 'S' ? 'B' : 'I', tag.substr(2)};
    return {'I', tag};  // not in B-/I- form: a continuation, as Hugging Face reads it
  };
  json out = json::array();
  size_t g = 0;
  while (g < words.size()) {
    const auto [bi, type] = split(tags[g]);
    size_t e = g + 1;
    while (e < words.size()) {
      const auto [nbi, ntype] = split(tags[e]);
      if (ntype != type || nbi == 'B') break;
      ++e;
    }
    if (type != "O") {
      double score = 0;
      for (size_t w = g; w < e; ++w) score += scores[w];
      const auto start = static_cast<size_t>(words[g].start),
                 end = static_cast<size_t>(words[e - 1].end);
      out.push_back({{"entity_group", type},
                     {"score", score / static_cast<double>(e - g)},
                     {"word", text.substr(byte_at[start], byte_at[end] - byte_at[start])},
                     {"start", words[g].start},
                     {"end", words[e - 1].end}});
    }
    g = e;
  }
  return out;
}

}  // namespace gaze::tasks
