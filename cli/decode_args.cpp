#include "cli/commands.h"

namespace gaze::cli {

void DecodeArgs::add_to(CLI::App& app) {
  app.add_option("--method", method, "translation: beam or greedy (default: as in training)")
      ->check(CLI::IsMember({"beam", "greedy"}));
  app.add_option("--beam-size", beam_size, "translation: hypotheses kept per step")
      ->check(CLI::PositiveNumber);
  app.add_option("--nbest", nbest, "translation: hypotheses returned per input (<= beam size)")
      ->check(CLI::PositiveNumber);
  app.add_option("--length-penalty", length_penalty,
                 "translation: scores are log p / length^penalty");
  app.add_option("--max-length-ratio", max_length_ratio,
                 "translation: at most ratio x source length + offset tokens")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-length-offset", max_length_offset, "translation: see --max-length-ratio")
      ->check(CLI::NonNegativeNumber);
}

std::optional<decode::SearchOptions> DecodeArgs::apply(const decode::SearchOptions& d) const {
  if (!method && !beam_size && !nbest && !length_penalty && !max_length_ratio && !max_length_offset)
    return std::nullopt;
  decode::SearchOptions o = d;
  if (method) o.method = *method;
  if (beam_size) o.beam_size = *beam_size;
  if (nbest) o.nbest = *nbest;
  if (length_penalty) o.length_penalty = *length_penalty;
  if (max_length_ratio) o.max_length_ratio = *max_length_ratio;
  if (max_length_offset) o.max_length_offset = *max_length_offset;
  if (o.nbest > o.beam_size) o.beam_size = o.nbest;  // n-best needs at least n beams
  return o;
}

}  // namespace gaze::cli
