// libtorch switches that tch does not bind: deterministic algorithms and cuDNN
// determinism. Called once per run by pcam::seed::Seeds::apply_to_torch.
#include <ATen/Context.h>

extern "C" void pcam_set_deterministic(int on) {
  at::globalContext().setDeterministicAlgorithms(on != 0, /*warn_only=*/false);
  at::globalContext().setDeterministicCuDNN(on != 0);
  at::globalContext().setBenchmarkCuDNN(false);
}

extern "C" int pcam_deterministic_enabled() {
  return at::globalContext().deterministicAlgorithms() ? 1 : 0;
}
