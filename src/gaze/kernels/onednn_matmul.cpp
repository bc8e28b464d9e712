#include "gaze/kernels/onednn_matmul.h"

#include "gaze/core/allocator.h"
#include "gaze/core/error.h"

namespace gaze::kernels::onednn {

const dnnl::engine& engine() {
  static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

Matmul make_matmul(const dnnl::memory::desc& src, const dnnl::memory::desc& weights,
                   const dnnl::memory::desc& bias, const dnnl::memory::desc& dst,
                   dnnl::primitive_attr attr, const std::string& context) {
  Matmul m;
  m.src = src, m.dst = dst, m.bias = bias;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const bool with_bias = bias.get_size() > 0;
  try {
    dnnl::matmul::primitive_desc pd(with_bias ? dnnl::matmul::desc(src, weights, bias, dst)
                                              : dnnl::matmul::desc(src, weights, dst),
                                    attr, engine());
    m.weights = pd.weights_desc();
    m.scratch = pd.scratchpad_desc();
    m.impl = pd.impl_info_str();
    m.prim = dnnl::matmul(pd);
  } catch (const dnnl::error& e) {
    throw Error(fmt::format("{}: {}", context, e.what()));
  }
  return m;
}

void append_activation(dnnl::post_ops& po, GemmAct act) {
  if (act == GemmAct::none) return;
  po.append_eltwise(1.0f,
                    act == GemmAct::relu   ? dnnl::algorithm::eltwise_relu
                    : act == GemmAct::gelu ? dnnl::algorithm::eltwise_gelu_erf
                                           : dnnl::algorithm::eltwise_gelu_tanh,
                    0.0f, 0.0f);
}

void execute(const Matmul& m, const void* src, const void* weights, void* dst, const void* bias,
             std::unordered_map<int, dnnl::memory> args) {
  thread_local dnnl::stream stream(engine());
  const dnnl::engine& e = engine();
  args.emplace(DNNL_ARG_SRC, dnnl::memory(m.src, e, const_cast<void*>(src)));
  args.emplace(DNNL_ARG_WEIGHTS, dnnl::memory(m.weights, e, const_cast<void*>(weights)));
  args.emplace(DNNL_ARG_DST, dnnl::memory(m.dst, e, dst));
  if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(m.bias, e, const_cast<void*>(bias)));
  // Scratch space comes from gaze's caching allocator, so repeated products do not call malloc.
  const size_t scratch_bytes = m.scratch.get_size();
  void* scratch = scratch_bytes ? allocator::allocate(scratch_bytes) : nullptr;
  if (scratch) args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(m.scratch, e, scratch));
  m.prim.execute(stream, args);
  stream.wait();
  if (scratch) allocator::deallocate(scratch, scratch_bytes);
}

}  // namespace gaze::kernels::onednn
