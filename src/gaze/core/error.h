// gaze errors: one exception hierarchy, so every front end maps a failure to one clear line and
// exit code. Messages name the operation, the offending values and what was expected.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace gaze {

// Base of every error gaze raises on purpose. Anything else escaping gaze is an internal bug.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An argument has the wrong value, shape or dtype (Python: ValueError).
class ValueError : public Error {
 public:
  using Error::Error;
};

// An index or dimension is out of range (Python: IndexError).
class IndexError : public Error {
 public:
  using Error::Error;
};

// The call is valid but the object's state forbids it, e.g. backward through a freed graph.
class StateError : public Error {
 public:
  using Error::Error;
};

// Input data (files, text, configs) is malformed; messages start with `file:line:` (exit code 2).
class DataError : public Error {
 public:
  using Error::Error;
};

}  // namespace gaze

// GAZE_CHECK(cond, ErrorType, "fmt", args...): throws ErrorType with a formatted message when cond
// is false. The message is only formatted on failure.
#define GAZE_CHECK(cond, ErrorType, ...)                    \
  do {                                                      \
    if (!(cond)) throw ErrorType(fmt::format(__VA_ARGS__)); \
  } while (0)
