// The Aggregator's client side: which listener a frontend connection counts
// under, and that listener's series and name. Records are handled with the
// backend side's in aggregator.cc.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/aggregator.h"

namespace sockeye {
namespace {

// Listeners are few; local addresses of accepted connections whose listener
// is unknown (it closed before the agent looked) could be as many as the
// host's addresses times its ports.
constexpr size_t kMaxFrontends = 1024;

Endpoint WildcardOf(const Endpoint& local, bool v6) {
  Endpoint any;
  any.port = local.port;
  if (!v6) any.addr[10] = any.addr[11] = 0xff;  // ::ffff:0.0.0.0
  return any;
}

}  // namespace

void Aggregator::SetListeners(std::vector<Endpoint> listeners) {
  std::lock_guard lock(mutex_);
  listeners_ = std::move(listeners);
}

Endpoint Aggregator::ListenerOf(const Endpoint& local) const {
  const auto bound = [this](const Endpoint& e) {
    return std::find(listeners_.begin(), listeners_.end(), e) != listeners_.end();
  };
  if (bound(local)) return local;
  // An IPv4 client of a wildcard listener: 0.0.0.0, or a dual-stack [::].
  const Endpoint same_family = WildcardOf(local, !local.IsV4());
  if (bound(same_family)) return same_family;
  if (local.IsV4() && bound(WildcardOf(local, true))) return WildcardOf(local, true);
  return local;
}

Aggregator::Backend* Aggregator::FrontendFor(const Endpoint& listener, Clock::time_point now) {
  auto it = frontends_.find(listener);
  if (it == frontends_.end()) {
    if (frontends_.size() >= kMaxFrontends) {
      frontend_overflow_->last_activity = now;
      return frontend_overflow_.get();
    }
    it = frontends_
             .emplace(listener, std::make_unique<Backend>(FormatEndpoint(listener),
                                                          FrontendNameFor(listener), *this))
             .first;
  }
  it->second->last_activity = now;
  return it->second.get();
}

std::string Aggregator::FrontendNameFor(const Endpoint& listener) const {
  for (const auto& name : options_.frontend_names) {
    if (name.match.Contains(listener)) return name.name;
  }
  return "";
}

size_t Aggregator::frontend_count() const {
  std::lock_guard lock(mutex_);
  return frontends_.size();
}

}  // namespace sockeye
