#include "agent/load_plan.h"

namespace sockeye {

LoadFallbacks::LoadFallbacks(LoadPlan first, bool sweep_may_fall_back) {
  const bool receive_may_fall_back = first.receive != ReceiveHook::kTcpProbe;
  const bool sweep_falls_back = sweep_may_fall_back && first.storage_sweep;
  plans_.push_back(first);
  if (receive_may_fall_back) plans_.push_back({first.storage_sweep, ReceiveHook::kTcpProbe});
  if (sweep_falls_back) {
    plans_.push_back({false, first.receive});
    if (receive_may_fall_back) plans_.push_back({false, ReceiveHook::kTcpProbe});
  }
}

std::optional<LoadPlan> LoadFallbacks::After(LoadStep step) {
  const LoadPlan failed = current();
  switch (step) {
    case LoadStep::kLoad:
      break;
    case LoadStep::kSweepAttach:
      if (!failed.storage_sweep) return std::nullopt;  // iter/tcp has no fallback
      storage_sweep_ruled_out_ = true;
      break;
    case LoadStep::kReceiveAttach:
      if (failed.receive == ReceiveHook::kTcpProbe) return std::nullopt;
      receive_ruled_out_ = true;
      break;
    case LoadStep::kOther:
      return std::nullopt;
  }
  for (size_t next = current_ + 1; next < plans_.size(); ++next) {
    const LoadPlan& plan = plans_[next];
    if (storage_sweep_ruled_out_ && plan.storage_sweep) continue;
    if (receive_ruled_out_ && plan.receive != ReceiveHook::kTcpProbe) continue;
    current_ = next;
    return plan;
  }
  return std::nullopt;
}

}  // namespace sockeye
