// The body of a model endpoint's request, parsed and checked before anything is queued:
// {"inputs": "text" | ["text", ...], "parameters": {...}} with the parameters that apply to the
// model's task. Any problem is an HttpError naming it (400 malformed, 422 too many inputs).
#pragma once

#include <memory>
#include <string_view>

#include "serve/engine.h"

namespace gaze::serve {

struct ParsedRequest {
  std::shared_ptr<Job> job;
  bool single = false;  // "inputs" was one string: answer with one output, not a list
};

// `html`: explain answers with the page (the client accepts text/html).
ParsedRequest parse_request(std::string_view body, Endpoint endpoint,
                            const tasks::Predictor& predictor, int64_t max_inputs, bool html);

// The JSON of a body. Nesting deeper than 64 (400) and more than `max_values` values (422) are
// refused before any tree is built.
nlohmann::json parse_json(std::string_view body, size_t max_values);

}  // namespace gaze::serve
