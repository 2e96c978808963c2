// libtorch switches that tch does not bind: deterministic algorithms, cuDNN
// determinism, and full IEEE float32 on CUDA. Called once per run by
// pcam::seed::Seeds::apply_to_torch.
#include <ATen/Context.h>

using at::Float32Backend;
using at::Float32Op;
using at::Float32Precision;

extern "C" void pcam_set_deterministic(int on) {
  auto& ctx = at::globalContext();
  ctx.setDeterministicAlgorithms(on != 0, /*warn_only=*/false);
  ctx.setDeterministicCuDNN(on != 0);
  ctx.setBenchmarkCuDNN(false);
  // Deterministic mode also fills every new uninitialised tensor (empty, empty_like:
  // activations, gradients, batch-norm and pooling outputs) with NaN, so that a kernel
  // reading memory it never wrote would still be repeatable. Every kernel pcam runs,
  // and pcam's own writers (batches, optimiser scratch), write all of their output, so
  // the fill changes no result; it was 12% of a CNN training step on the CPU.
  ctx.setDeterministicFillUninitializedMemory(false);
  // cuDNN convolutions default to TF32 (10-bit mantissa) on Ampere and later: still
  // bitwise repeatable on one GPU, but a CUDA-trained checkpoint's probabilities then
  // differ from the CPU's by ~1e-4 (measured on an H200). Deterministic mode asks for
  // IEEE float32 in convolutions and matrix products alike, so CPU and CUDA agree.
  if (on != 0) {
    ctx.setFloat32Precision(Float32Backend::CUDA, Float32Op::CONV, Float32Precision::IEEE);
    ctx.setFloat32Precision(Float32Backend::CUDA, Float32Op::MATMUL, Float32Precision::IEEE);
  }
}

// 1 when deterministic algorithms are on and CUDA convolutions and matrix products
// run in IEEE float32 (what the run manifest records as `deterministic_algorithms`).
extern "C" int pcam_deterministic_enabled() {
  auto& ctx = at::globalContext();
  bool ieee =
      ctx.float32Precision(Float32Backend::CUDA, Float32Op::CONV) == Float32Precision::IEEE &&
      ctx.float32Precision(Float32Backend::CUDA, Float32Op::MATMUL) == Float32Precision::IEEE;
  return ctx.deterministicAlgorithms() && ieee ? 1 : 0;
}
