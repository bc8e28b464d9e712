// A model's inference precision: its matrices (Module::named_matmul_weights) multiplied in float32,
// bfloat16 or int8, with the float32 fallback on CPUs that lack the instructions.
#pragma once

#include <string>

#include "gaze/core/precision.h"
#include "gaze/nn/module.h"

namespace gaze::nn {

// `want` when this CPU runs it in hardware; otherwise float32, with `notice` (if given) set to one
// line saying why.
Precision usable_precision(Precision want, std::string* notice = nullptr);
// Converts every matmul weight of `m` to `p` (ops/lowp.h): bf16 and int8 round the weights in
// place; fp32 goes back to float32 products (with the rounded values).
void set_precision(Module& m, Precision p);
// The precision m's matrices multiply in: that of its first converted matmul weight, else fp32.
Precision precision_of(const Module& m);

}  // namespace gaze::nn
