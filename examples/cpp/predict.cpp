// gaze as a library: loads a model folder that `gaze train` wrote and prints one JSON prediction
// per line of stdin, shaped as `gaze predict` prints them. Built against the installed package:
//   cmake -S examples/cpp -B build-example -DCMAKE_PREFIX_PATH=PREFIX && cmake --build
//   build-example c++ predict.cpp $(pkg-config --cflags --libs gaze) -o predict
#include <gaze/core/error.h>
#include <gaze/core/version.h>
#include <gaze/tasks/task.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR < texts (gaze %s)\n", argv[0],
                 std::string(gaze::version()).c_str());
    return 2;
  }
  try {
    const auto predictor = gaze::tasks::load_predictor(gaze::tasks::resolve_model_dir(argv[1]));
    std::vector<std::string> texts;
    for (std::string line; std::getline(std::cin, line);) texts.push_back(line);
    for (const auto& prediction : predictor->predict(texts, predictor->predict_defaults()))
      std::cout << prediction.dump() << "\n";
  } catch (const gaze::Error& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 2;
  }
  return 0;
}
