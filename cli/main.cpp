// gaze: train, evaluate and run attention models from the command line. Errors become one line on
// stderr and an exit code: 0 ok, 2 bad input (files, configs, arguments), 1 internal error,
// 130 interrupted (a resumable checkpoint was saved). Output that cannot be written (a full disk)
// or input that cannot be read is an error too (exit 1), never a silent success.
#include <algorithm>
#include <cstdio>

#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/suggest.h"
#include "gaze/core/error.h"
#include "gaze/core/version.h"

int main(int argc, char** argv) {
  CLI::App app{"gaze: attention models for text - train, evaluate, predict, translate, explain"};
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  gaze train examples/classify/sentiment.yaml\n"
      "  gaze train examples/translate/g2p_rnn.yaml --set train.lr=0.0005 --epochs 5\n"
      "  gaze eval --model runs/sentiment --split test\n"
      "  echo 'What a great phone!' | gaze predict --model runs/sentiment\n"
      "  echo 'hello world' | gaze translate --model runs/bible_en_es\n"
      "  gaze explain --model runs/sentiment --input 'Not bad at all.' --out explain/\n"
      "  gaze import use-lite data/use-lite --out models/use-lite\n"
      "  echo 'A sentence.' | gaze embed --model models/use-lite\n"
      "  gaze serve --model sentiment=runs/sentiment --port 8080\n"
      "  gaze quantize runs/sentiment --out runs/sentiment-int8\n"
      "  gaze report runs/sentiment\n"
      "Run `gaze COMMAND --help` for a command's options.");
  app.set_version_flag(
      "--version", [] { return "gaze " + gaze::version_line(); },
      "print gaze's version and the commit it was built from, and exit");
  auto* version = app.add_subcommand("version", "print gaze's version and commit");
  gaze::cli::Action action;
  auto* train = app.add_subcommand("train", "train a model from a YAML run configuration");
  auto train_action = gaze::cli::add_train(*train);
  auto* eval = app.add_subcommand("eval", "metrics of a trained model on a labelled file");
  auto eval_action = gaze::cli::add_eval(*eval);
  auto* predict = app.add_subcommand("predict", "predictions as JSON Lines");
  auto predict_action = gaze::cli::add_predict(*predict);
  auto* translate = app.add_subcommand("translate", "translate stdin line by line (plain text)");
  auto translate_action = gaze::cli::add_translate(*translate);
  auto* explain = app.add_subcommand(
      "explain", "what a model attends to: HTML page, PNG heatmaps and JSON of its attention");
  auto explain_action = gaze::cli::add_explain(*explain);
  auto* embed = app.add_subcommand("embed", "sentence embeddings as JSON Lines");
  auto embed_action = gaze::cli::add_embed(*embed);
  auto* import = app.add_subcommand(
      "import", "turn a pretrained model of another toolkit into a gaze model folder");
  auto import_action = gaze::cli::add_import(*import);
  auto* serve = app.add_subcommand(
      "serve", "an HTTP server for trained models, with dynamic batching and metrics");
  auto serve_action = gaze::cli::add_serve(*serve);
  auto* quantize = app.add_subcommand(
      "quantize", "rewrite a model folder with int8 or bf16 matrices (smaller, faster inference)");
  auto quantize_action = gaze::cli::add_quantize(*quantize);
  auto* report = app.add_subcommand(
      "report", "(re)build a run folder's report.html: learning curves, confusion, examples");
  auto report_action = gaze::cli::add_report(*report);
  // A mistyped command or option is named with the nearest valid one, as git and cargo do.
  std::vector<std::string> commands;
  for (const CLI::App* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
  if (argc > 1 && argv[1][0] != '-' &&
      std::find(commands.begin(), commands.end(), argv[1]) == commands.end()) {
    const std::string near = gaze::cli::closest(argv[1], commands);
    std::fprintf(stderr, "gaze: unknown command '%s'%s (commands: %s; run `gaze --help`)\n",
                 argv[1], near.empty() ? "" : fmt::format("; did you mean '{}'?", near).c_str(),
                 fmt::format("{}", fmt::join(commands, ", ")).c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    if (const std::string hint = gaze::cli::unknown_option_hint(app, argc, argv); !hint.empty()) {
      std::fprintf(stderr, "gaze: %s\n", hint.c_str());
      return 2;
    }
    std::fprintf(stderr, "gaze: %s\n(run `gaze --help` or `gaze COMMAND --help`)\n", e.what());
    return 2;
  }
  try {
    int rc = 0;
    if (version->parsed())
      std::printf("gaze %s\n", gaze::version_line().c_str());
    else if (train->parsed())
      rc = train_action();
    else if (eval->parsed())
      rc = eval_action();
    else if (translate->parsed())
      rc = translate_action();
    else if (explain->parsed())
      rc = explain_action();
    else if (embed->parsed())
      rc = embed_action();
    else if (import->parsed())
      rc = import_action();
    else if (serve->parsed())
      rc = serve_action();
    else if (quantize->parsed())
      rc = quantize_action();
    else if (report->parsed())
      rc = report_action();
    else
      rc = predict_action();
    gaze::cli::check_stdout();  // whatever a command printed must have reached its destination
    return rc;
  } catch (const gaze::cli::IoError& e) {
    std::fprintf(stderr, "gaze: %s\n", e.what());
    return 1;
  } catch (const gaze::StateError& e) {
    std::fprintf(stderr, "gaze: error: %s\n", e.what());
    return 1;
  } catch (const gaze::Error& e) {
    std::fprintf(stderr, "gaze: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gaze: internal error: %s\n", e.what());
    return 1;
  }
}
