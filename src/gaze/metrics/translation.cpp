#include "gaze/metrics/translation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "gaze/core/error.h"
#include "gaze/text/utf8.h"

namespace gaze::metrics {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// 13a's first rule: the ASCII punctuation and symbols [{-~[-` -&(-+:-@/] become tokens.
bool is_13a_symbol(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
         (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

// Whitespace-separated tokens, as Python's str.split() (Unicode spaces included).
std::vector<std::string_view> split_tokens(std::string_view s) {
  std::vector<std::string_view> out;
  const auto chars = text::split_chars(s);
  size_t start = std::string::npos, pos = 0;
  for (const auto& ch : chars) {
    const bool space = text::is_space(text::decode_utf8(ch)[0]);
    if (!space && start == std::string::npos) start = pos;
    if (space && start != std::string::npos) {
      out.push_back(s.substr(start, pos - start));
      start = std::string::npos;
    }
    pos += ch.size();
  }
  if (start != std::string::npos) out.push_back(s.substr(start));
  return out;
}

using NgramCounts = std::map<std::string_view, int64_t>;

// n-grams of tokens, keyed by the text they span in `joined` (tokens separated by one space).
std::array<std::map<std::string, int64_t>, 4> word_ngrams(
    const std::vector<std::string_view>& toks) {
  std::array<std::map<std::string, int64_t>, 4> out;
  for (size_t n = 1; n <= 4; ++n)
    for (size_t i = 0; i + n <= toks.size(); ++i) {
      std::string key(toks[i]);
      for (size_t j = 1; j < n; ++j) key.append(" ").append(toks[i + j]);
      ++out[n - 1][key];
    }
  return out;
}

}  // namespace

std::string tokenize_13a(std::string_view input) {
  std::string line(input);
  replace_all(line, "<skipped>", "");
  replace_all(line, "-\n", "");
  replace_all(line, "\n", " ");
  replace_all(line, "&quot;", "\"");
  replace_all(line, "&amp;", "&");
  replace_all(line, "&lt;", "<");
  replace_all(line, "&gt;", ">");
  line = " " + line + " ";
  // Each rule is a regular-expression substitution applied left to right without overlaps, as
  // Python's re.sub; working on bytes gives the same result because only ASCII is matched.
  std::string a;
  for (const char c : line) {
    if (is_13a_symbol(c))
      a.append(" ").push_back(c), a.push_back(' ');
    else
      a.push_back(c);
  }
  auto pairs = [](const std::string& s, auto match, auto emit) {
    std::string out;
    size_t i = 0;
    while (i < s.size()) {
      if (i + 1 < s.size() && match(s[i], s[i + 1])) {
        emit(out, s[i], s[i + 1]);
        i += 2;
      } else {
        out.push_back(s[i++]);
      }
    }
    return out;
  };
  const auto dot_comma = [](char c) { return c == '.' || c == ','; };
  // ([^0-9])([\.,]) -> "\1 \2 "
  std::string b = pairs(
      a, [&](char x, char y) { return !is_digit(x) && dot_comma(y); },
      [](std::string& o, char x, char y) {
        o.push_back(x), o.push_back(' '), o.push_back(y), o.push_back(' ');
      });
  // ([\.,])([^0-9]) -> " \1 \2"
  std::string c = pairs(
      b, [&](char x, char y) { return dot_comma(x) && !is_digit(y); },
      [](std::string& o, char x, char y) {
        o.push_back(' '), o.push_back(x), o.push_back(' '), o.push_back(y);
      });
  // ([0-9])(-) -> "\1 \2 "
  std::string d = pairs(
      c, [](char x, char y) { return is_digit(x) && y == '-'; },
      [](std::string& o, char x, char y) {
        o.push_back(x), o.push_back(' '), o.push_back(y), o.push_back(' ');
      });
  std::string out;
  for (const std::string_view t : split_tokens(d)) {
    if (!out.empty()) out.push_back(' ');
    out.append(t);
  }
  return out;
}

BleuScore corpus_bleu(const std::vector<std::string>& hyps,
                      const std::vector<std::vector<std::string>>& refs, BleuSmoothing smooth) {
  GAZE_CHECK(hyps.size() == refs.size(), ValueError,
             "corpus_bleu: {} hypotheses but {} reference lists", hyps.size(), refs.size());
  BleuScore b;
  for (size_t i = 0; i < hyps.size(); ++i) {
    GAZE_CHECK(!refs[i].empty(), ValueError, "corpus_bleu: hypothesis {} has no reference", i + 1);
    const std::string h = tokenize_13a(hyps[i]);
    const auto htoks = split_tokens(h);
    const auto hgrams = word_ngrams(htoks);
    std::array<std::map<std::string, int64_t>, 4> maxref;
    int64_t closest = -1;
    const auto hlen = static_cast<int64_t>(htoks.size());
    for (const std::string& ref : refs[i]) {
      const std::string r = tokenize_13a(ref);
      const auto rtoks = split_tokens(r);
      const auto rlen = static_cast<int64_t>(rtoks.size());
      // The closest reference length; on a tie, the shorter (sacreBLEU).
      if (closest < 0 || std::abs(rlen - hlen) < std::abs(closest - hlen) ||
          (std::abs(rlen - hlen) == std::abs(closest - hlen) && rlen < closest))
        closest = rlen;
      const auto rgrams = word_ngrams(rtoks);
      for (size_t n = 0; n < 4; ++n)
        for (const auto& [g, k] : rgrams[n]) maxref[n][g] = std::max(maxref[n][g], k);
    }
    b.sys_len += hlen, b.ref_len += closest;
    for (size_t n = 0; n < 4; ++n) {
      b.totals[n] += std::max<int64_t>(0, hlen - static_cast<int64_t>(n));
      for (const auto& [g, k] : hgrams[n]) {
        const auto it = maxref[n].find(g);
        if (it != maxref[n].end()) b.counts[n] += std::min(k, it->second);
      }
    }
  }
  double smooth_mteval = 1.0, log_sum = 0;
  bool zero = false;
  for (size_t n = 0; n < 4; ++n) {
    if (b.totals[n] == 0) {
      zero = true;  // sacreBLEU stops here: the remaining precisions stay 0
      break;
    }
    if (b.counts[n] == 0 && smooth == BleuSmoothing::exp) {
      smooth_mteval *= 2;
      b.precisions[n] = 100.0 / (smooth_mteval * static_cast<double>(b.totals[n]));
    } else {
      b.precisions[n] = 100.0 * static_cast<double>(b.counts[n]) / static_cast<double>(b.totals[n]);
    }
    if (b.precisions[n] <= 0)
      zero = true;
    else
      log_sum += std::log(b.precisions[n]);
  }
  if (b.sys_len == 0)
    b.bp = 0;
  else if (b.sys_len < b.ref_len)
    b.bp = std::exp(1.0 - static_cast<double>(b.ref_len) / static_cast<double>(b.sys_len));
  else
    b.bp = 1.0;
  b.score = zero ? 0.0 : b.bp * std::exp(log_sum / 4.0);
  return b;
}

std::string to_string(const BleuScore& b) {
  return fmt::format(
      "BLEU = {:.2f} {:.1f}/{:.1f}/{:.1f}/{:.1f} (BP = {:.3f} ratio = {:.3f} hyp_len = {} ref_len "
      "= {})",
      b.score, b.precisions[0], b.precisions[1], b.precisions[2], b.precisions[3], b.bp,
      b.ref_len > 0 ? static_cast<double>(b.sys_len) / static_cast<double>(b.ref_len) : 0.0,
      b.sys_len, b.ref_len);
}

namespace {

constexpr int kCharOrder = 6;
constexpr double kBeta = 2.0;

// Character n-gram counts (code points, whitespace removed) for n = 1..6.
std::array<std::map<std::string, int64_t>, kCharOrder> char_ngrams(std::string_view s) {
  std::vector<std::string> chars = text::split_chars(s);
  std::erase_if(chars,
                [](const std::string& ch) { return text::is_space(text::decode_utf8(ch)[0]); });
  std::array<std::map<std::string, int64_t>, kCharOrder> out;
  for (size_t n = 1; n <= kCharOrder; ++n)
    for (size_t i = 0; i + n <= chars.size(); ++i) {
      std::string key;
      for (size_t j = 0; j < n; ++j) key.append(chars[i + j]);
      ++out[n - 1][key];
    }
  return out;
}

using ChrfStats = std::array<int64_t, 3 * kCharOrder>;  // per order: hyp, ref, match

ChrfStats chrf_stats(const std::array<std::map<std::string, int64_t>, kCharOrder>& h,
                     const std::array<std::map<std::string, int64_t>, kCharOrder>& r) {
  ChrfStats s{};
  for (size_t n = 0; n < kCharOrder; ++n) {
    for (const auto& [g, k] : h[n]) {
      s[3 * n] += k;
      const auto it = r[n].find(g);
      if (it != r[n].end()) s[3 * n + 2] += std::min(k, it->second);
    }
    for (const auto& [g, k] : r[n]) s[3 * n + 1] += k;
  }
  return s;
}

// sacreBLEU's CHRF._compute_f_score (eps_smoothing off): precision and recall averaged over the
// orders that have both hypothesis and reference n-grams, then F-beta.
double chrf_score(const ChrfStats& s) {
  constexpr double eps = 1e-16;
  const double factor = kBeta * kBeta;
  double avg_p = 0, avg_r = 0;
  int effective = 0;
  for (size_t n = 0; n < kCharOrder; ++n) {
    const auto hyp = s[3 * n], ref = s[3 * n + 1], match = s[3 * n + 2];
    const double p = hyp > 0 ? static_cast<double>(match) / static_cast<double>(hyp) : eps;
    const double r = ref > 0 ? static_cast<double>(match) / static_cast<double>(ref) : eps;
    if (hyp > 0 && ref > 0) {
      avg_p += p, avg_r += r;
      ++effective;
    }
  }
  if (effective == 0) return 0.0;
  avg_p /= effective, avg_r /= effective;
  if (avg_p + avg_r == 0) return 0.0;
  return 100.0 * (1 + factor) * avg_p * avg_r / (factor * avg_p + avg_r);
}

}  // namespace

double corpus_chrf(const std::vector<std::string>& hyps,
                   const std::vector<std::vector<std::string>>& refs) {
  GAZE_CHECK(hyps.size() == refs.size(), ValueError,
             "corpus_chrf: {} hypotheses but {} reference lists", hyps.size(), refs.size());
  ChrfStats total{};
  for (size_t i = 0; i < hyps.size(); ++i) {
    GAZE_CHECK(!refs[i].empty(), ValueError, "corpus_chrf: hypothesis {} has no reference", i + 1);
    const auto h = char_ngrams(hyps[i]);
    ChrfStats best{};
    double best_score = -1;
    for (const std::string& ref : refs[i]) {
      const ChrfStats s = chrf_stats(h, char_ngrams(ref));
      const double f = chrf_score(s);
      if (f > best_score) best_score = f, best = s;
    }
    for (size_t k = 0; k < total.size(); ++k) total[k] += best[k];
  }
  return chrf_score(total);
}

int64_t edit_distance(const std::vector<std::string_view>& a,
                      const std::vector<std::string_view>& b) {
  std::vector<int64_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

ErrorRates error_rates(const std::vector<std::string>& hyps,
                       const std::vector<std::vector<std::string>>& refs) {
  GAZE_CHECK(hyps.size() == refs.size(), ValueError,
             "error_rates: {} hypotheses but {} reference lists", hyps.size(), refs.size());
  ErrorRates e;
  int64_t wrong = 0, edits = 0;
  for (size_t i = 0; i < hyps.size(); ++i) {
    GAZE_CHECK(!refs[i].empty(), ValueError, "error_rates: hypothesis {} has no reference", i + 1);
    const std::string ht = tokenize_13a(hyps[i]);
    const auto h = split_tokens(ht);
    int64_t best = -1, best_len = 0;
    for (const std::string& ref : refs[i]) {
      const std::string rt = tokenize_13a(ref);
      const auto r = split_tokens(rt);
      const int64_t d = edit_distance(h, r);
      if (best < 0 || d < best) best = d, best_len = static_cast<int64_t>(r.size());
    }
    wrong += best > 0;
    edits += best;
    e.reference_tokens += best_len;
  }
  e.examples = static_cast<int64_t>(hyps.size());
  e.wer = e.examples > 0 ? 100.0 * static_cast<double>(wrong) / static_cast<double>(e.examples) : 0;
  e.per = e.reference_tokens > 0
              ? 100.0 * static_cast<double>(edits) / static_cast<double>(e.reference_tokens)
              : 0;
  return e;
}

}  // namespace gaze::metrics
