#include "serve/openapi.h"

#include "gaze/explain/attribution.h"

namespace gaze::serve {
namespace {

using json = nlohmann::json;

json ref(const std::string& name) {
  return {{"$ref", "#/components/schemas/" + name}};
}

json json_content(const json& schema) {
  return {{"application/json", {{"schema", schema}}}};
}

json error_responses(std::initializer_list<int> statuses) {
  static const std::map<int, std::string> what = {
      {400, "malformed JSON, unknown fields or parameters, wrong types"},
      {404, "no such model (or no such endpoint for this model)"},
      {405, "wrong method"},
      {413, "body larger than --max-body-bytes"},
      {415, "Content-Type is not application/json"},
      {422,
       "too many inputs, an input longer than the model reads (without truncation), or an "
       "input the model cannot take"},
      {429, "the model's queue is full (Retry-After)"},
      {503, "shutting down (Retry-After)"},
      {504, "not answered within --timeout-ms"}};
  json out = json::object();
  for (const int s : statuses)
    out[std::to_string(s)] = {{"description", what.at(s)}, {"content", json_content(ref("Error"))}};
  return out;
}

json model_operation(const std::string& summary, const json& ok_content, const json& params) {
  json responses = error_responses({400, 404, 405, 413, 415, 422, 429, 503, 504});
  responses["200"] = {
      {"description", "one output per input, in order (one output when inputs is a string)"},
      {"headers",
       {{"X-Truncated-Inputs",
         {{"description", "indices of the inputs cut to the model's maximum length"},
          {"schema", {{"type", "string"}}}}}}},
      {"content", ok_content}};
  return {
      {"summary", summary},
      {"parameters", json::array({{{"name", "name"},
                                   {"in", "path"},
                                   {"required", true},
                                   {"description", "the model's name (--model NAME=DIR)"},
                                   {"schema", {{"type", "string"}}}}})},
      {"requestBody",
       {{"required", true},
        {"content", json_content({{"type", "object"},
                                  {"required", {"inputs"}},
                                  {"additionalProperties", false},
                                  {"properties",
                                   {{"inputs",
                                     {{"oneOf", json::array({{{"type", "string"}},
                                                             {{"type", "array"},
                                                              {"minItems", 1},
                                                              {"items", {{"type", "string"}}}}})}}},
                                    {"parameters", params}}}})}}},
      {"responses", responses}};
}

json one_or_many(const json& schema) {
  return {{"oneOf", json::array({schema, {{"type", "array"}, {"items", schema}}})}};
}

json build() {
  const json number = {{"type", "number"}}, integer = {{"type", "integer"}},
             string = {{"type", "string"}}, boolean = {{"type", "boolean"}};
  const json integers = {{"type", "array"}, {"items", integer}};
  const json label = {{"type", "object"},
                      {"required", {"label", "score"}},
                      {"properties", {{"label", string}, {"score", number}}}};
  const json entity = {{"type", "object"},
                       {"required", {"entity_group", "score", "word", "start", "end"}},
                       {"properties",
                        {{"entity_group", string},
                         {"score", number},
                         {"word", string},
                         {"start", integer},
                         {"end", integer}}}};
  const json schemas = {
      {"Error",
       {{"type", "object"},
        {"required", {"error", "type"}},
        {"properties", {{"error", string}, {"type", string}}}}},
      {"Classification",
       {{"description", "the best label, or with top_k a list of the k best"},
        {"oneOf", json::array({label, {{"type", "array"}, {"items", label}}})}}},
      {"Tagging",
       {{"type", "object"},
        {"required", {"words", "tags", "scores"}},
        {"properties",
         {{"words", {{"type", "array"}, {"items", string}}},
          {"tags", {{"type", "array"}, {"items", string}}},
          {"scores", {{"type", "array"}, {"items", number}}},
          {"entities", {{"type", "array"}, {"items", entity}}}}}}},
      {"Translation",
       {{"type", "object"},
        {"required", {"translation_text"}},
        {"properties",
         {{"translation_text", string},
          {"score", number},
          {"log_prob", number},
          {"nbest",
           {{"type", "array"},
            {"items",
             {{"type", "object"},
              {"properties", {{"translation_text", string}, {"score", number}}}}}}},
          {"alignment", {{"type", "object"}}}}}}},
      {"Embedding",
       {{"type", "object"},
        {"properties", {{"embedding", {{"type", "array"}, {"items", number}}}}}}},
      {"EmptyInput",
       {{"description", "a classifier's answer to a blank input"},
        {"type", "object"},
        {"required", {"error"}},
        {"properties", {{"error", string}}}}},
      {"Model",
       {{"type", "object"},
        {"required", {"name", "task", "max_length", "precision", "endpoints"}},
        {"properties",
         {{"name", string},
          {"task", {{"type", "string"}, {"enum", {"classify", "tag", "translate", "embed"}}}},
          {"max_length", integer},
          {"precision", {{"type", "string"}, {"enum", {"fp32", "bf16", "int8"}}}},
          {"labels", {{"type", "array"}, {"items", string}}},
          {"tags", {{"type", "array"}, {"items", string}}},
          {"entities", boolean},
          {"dimension", integer},
          {"architecture", string},
          {"max_target_length", integer},
          {"decode", {{"type", "object"}}},
          {"endpoints", {{"type", "array"}, {"items", string}}}}}}}};
  const json predict_params = {
      {"type", "object"},
      {"description",
       "only those that apply to the model's task; others are a 400 error. truncation: cut "
       "inputs longer than the model reads instead of refusing them (422)"},
      {"properties",
       {{"truncation", boolean},
        {"top_k", {{"type", "integer"}, {"minimum", 1}, {"description", "classification"}}},
        {"aggregation",
         {{"type", "string"},
          {"enum", {"simple", "first", "average", "max"}},
          {"description", "tagging"}}},
        {"scores", boolean},
        {"alignment", boolean},
        {"alignment_layer", integer},
        {"method", {{"type", "string"}, {"enum", {"beam", "greedy"}}}},
        {"beam_size", integer},
        {"nbest", integer},
        {"length_penalty", number},
        {"max_length_ratio", number},
        {"max_length_offset", integer},
        {"max_length", integer}}}};
  const json explain_params = {
      {"type", "object"},
      {"properties",
       {{"truncation", boolean},
        {"layers", integers},
        {"heads", integers},
        {"alignment_layer", integer},
        {"beam_size", integer},
        {"method", {{"type", "string"}, {"enum", enum_name_list<explain::Method>()}}},
        {"steps", integer},
        {"baseline", {{"type", "string"}, {"enum", enum_name_list<explain::Baseline>()}}},
        {"faithfulness", boolean},
        {"target", string},
        {"words", boolean}}}};
  const json prediction = {
      {"oneOf", json::array({ref("Classification"), ref("Tagging"), ref("Translation"),
                             ref("Embedding"), ref("EmptyInput")})}};
  const json paths = {
      {"/v1/models/{name}/predict",
       {{"post", model_operation("predictions shaped like Hugging Face pipeline outputs",
                                 json_content(one_or_many(prediction)), predict_params)}}},
      {"/v1/models/{name}/embed",
       {{"post",
         model_operation("sentence embeddings (sentence encoders; classifiers: pooled features)",
                         json_content(one_or_many({{"type", "array"}, {"items", number}})),
                         {{"type", "object"}, {"properties", {{"truncation", boolean}}}})}}},
      {"/v1/models/{name}/explain",
       {{"post",
         model_operation("the attention of gaze explain on one input: its JSON, or the page "
                         "with Accept: text/html",
                         {{"application/json", {{"schema", {{"type", "object"}}}}},
                          {"text/html", {{"schema", string}}}},
                         explain_params)}}},
      {"/v1/models",
       {{"get",
         {{"summary", "the served models"},
          {"responses",
           {{"200",
             {{"description", "names, tasks, labels, maximum lengths"},
              {"content",
               json_content(
                   {{"type", "object"},
                    {"required", {"models"}},
                    {"properties",
                     {{"models", {{"type", "array"}, {"items", ref("Model")}}}}}})}}}}}}}}},
      {"/v1/models/{name}",
       {{"get",
         {{"summary", "one served model"},
          {"parameters",
           json::array(
               {{{"name", "name"}, {"in", "path"}, {"required", true}, {"schema", string}}})},
          {"responses",
           {{"200", {{"description", "the model"}, {"content", json_content(ref("Model"))}}},
            {"404",
             {{"description", "no such model"}, {"content", json_content(ref("Error"))}}}}}}}}},
      {"/healthz",
       {{"get",
         {{"summary", "liveness: the process answers"},
          {"responses",
           {{"200",
             {{"description", "alive"}, {"content", json_content({{"type", "object"}})}}}}}}}}},
      {"/readyz",
       {{"get",
         {{"summary", "readiness: models loaded and not draining"},
          {"responses",
           {{"200", {{"description", "ready"}, {"content", json_content({{"type", "object"}})}}},
            {"503", {{"description", "draining"}, {"content", json_content(ref("Error"))}}}}}}}}},
      {"/metrics",
       {{"get",
         {{"summary", "Prometheus metrics (text format 0.0.4)"},
          {"responses",
           {{"200",
             {{"description", "the exposition"},
              {"content", {{"text/plain", {{"schema", string}}}}}}}}}}}}},
      {"/openapi.json",
       {{"get",
         {{"summary", "this document"},
          {"responses",
           {{"200",
             {{"description", "OpenAPI 3.0"},
              {"content", json_content({{"type", "object"}})}}}}}}}}}};
  return {{"openapi", "3.0.3"},
          {"info",
           {{"title", "gaze serve"},
            {"description",
             "Attention models for text: classification, tagging, translation and "
             "sentence embeddings, with dynamic batching."},
            {"version", "1"}}},
          {"paths", paths},
          {"components", {{"schemas", schemas}}}};
}

}  // namespace

const json& openapi_document() {
  static const json doc = build();
  return doc;
}

}  // namespace gaze::serve
