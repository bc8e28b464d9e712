// The run report: RUN/report.html, one self-contained page (no script, no network) made from the
// run folder's files: learning curves from metrics.jsonl, the test report's confusion matrix and
// per-class scores, and the test examples the model got most wrong and took longest on.
#pragma once

#include <string>

namespace gaze::train {

// The page for the run folder `run_dir` (config.yaml, metrics.jsonl, and when present
// test_report.json and test_predictions.jsonl); a file that is missing leaves its section out, a
// damaged line of metrics.jsonl is skipped.
std::string run_report_html(const std::string& run_dir);
// Writes run_report_html(run_dir) to `out` (default RUN/report.html), atomically; returns the path.
std::string write_run_report(const std::string& run_dir, const std::string& out = "");

}  // namespace gaze::train
