// gaze report RUN: (re)builds a run folder's report.html from its files (learning curves, the test
// set's confusion and per-class scores, its most confused and slowest examples).
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "gaze/train/run_report.h"

namespace gaze::cli {

Action add_report(CLI::App& app) {
  struct Args {
    std::string run, out;
  };
  auto a = std::make_shared<Args>();
  app.add_option("run", a->run, "a run folder (gaze train's output)")->required();
  app.add_option("--out", a->out, "where to write the page (default RUN/report.html)");
  app.footer(
      "gaze train writes RUN/report.html at the end of a run (and when interrupted); this\n"
      "rebuilds it, e.g. while a run is going or after gaze was updated.\n"
      "Examples:\n"
      "  gaze report runs/sentiment\n"
      "  gaze report runs/sentiment --out /tmp/sentiment.html");
  return [a] {
    std::cout << train::write_run_report(a->run, a->out) << "\n";
    return 0;
  };
}

}  // namespace gaze::cli
