// The OpenAPI 3.0 description of the server's endpoints (GET /openapi.json): what each takes and
// answers, including the error bodies, so clients can be generated and checked against it.
#pragma once

#include <nlohmann/json.hpp>

namespace gaze::serve {

const nlohmann::json& openapi_document();

}  // namespace gaze::serve
