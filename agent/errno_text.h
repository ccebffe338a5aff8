// The text of an errno value, given as errno or as a negative libbpf return.
#pragma once

#include <cstring>
#include <string>

namespace sockeye {

inline std::string ErrnoText(int err) { return std::strerror(err < 0 ? -err : err); }

}  // namespace sockeye
