#include "agent/load_plan.h"

namespace sockeye {

LoadFallbacks::LoadFallbacks(LoadPlan first, bool sweep_may_fall_back) {
  const bool receive_may_fall_back = first.receive != ReceiveHook::kTcpProbe;
  const bool sweep_falls_back = sweep_may_fall_back && first.storage_sweep;
  plans_.push_back(first);
  if (receive_may_fall_back)
    plans_.push_back({first.storage_sweep, ReceiveHook::kTcpProbe, first.http_status});
  if (sweep_falls_back) {
    plans_.push_back({false, first.receive, first.http_status});
    if (receive_may_fall_back)
      plans_.push_back({false, ReceiveHook::kTcpProbe, first.http_status});
  }
}

std::optional<LoadPlan> LoadFallbacks::After(LoadStep step) {
  const LoadPlan failed = current();
  switch (step) {
    case LoadStep::kLoad:
      break;
    case LoadStep::kStatusLoad:
      // The status program is optional: every plan goes on without it.
      if (!failed.http_status) return std::nullopt;
      for (LoadPlan& plan : plans_) plan.http_status = false;
      return current();
    case LoadStep::kSweepLoad:
    case LoadStep::kSweepAttach:
      if (!failed.storage_sweep) return std::nullopt;  // iter/tcp has no fallback
      storage_sweep_ruled_out_ = true;
      break;
    case LoadStep::kReceiveLoad:
    case LoadStep::kReceiveAttach:
      if (failed.receive == ReceiveHook::kTcpProbe) return std::nullopt;
      receive_ruled_out_ = true;
      break;
    case LoadStep::kOtherLoad:
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

std::optional<LoadRefusal> ParseLoadRefusal(std::string_view message) {
  auto take_prefix = [&message](std::string_view prefix) {
    if (message.substr(0, prefix.size()) != prefix) return false;
    message.remove_prefix(prefix.size());
    return true;
  };
  take_prefix("libbpf: ");
  LoadRefusal refusal;
  if (take_prefix("map '")) {
    refusal.is_map = true;
  } else if (!take_prefix("prog '")) {
    return std::nullopt;
  }
  const size_t quote = message.find("': ");
  if (quote == std::string_view::npos || quote == 0) return std::nullopt;
  refusal.name = std::string(message.substr(0, quote));
  message.remove_prefix(quote + 3);
  const bool refused =
      refusal.is_map ? take_prefix("failed to create:")
                     : take_prefix("failed to load") || take_prefix("BPF program load failed");
  if (!refused) return std::nullopt;
  return refusal;
}

}  // namespace sockeye
