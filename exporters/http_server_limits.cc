#include "exporters/http_server_limits.h"

#include <sys/resource.h>

#include <algorithm>

namespace sockeye::metrics::http_limits {

size_t EffectiveMaxConnections() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return kMaxConnections;
  }
  return std::clamp<size_t>(static_cast<size_t>(limit.rlim_cur / 2), 1, kMaxConnections);
}

}  // namespace sockeye::metrics::http_limits
