// The --config file: arbitrary text read the way the agent reads it, through
// ParseCommandLine with --config naming a file that holds the input, so that
// CLI11's TOML reader, sockeye's reader on top of it (agent/config_file.cc)
// and the validation of every value all run.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent/command_line.h"
#include "settings_checks.h"

namespace {

// One file per process, rewritten for every input; removed at exit.
const std::string& ConfigPath() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    std::string pattern =
        std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/sockeye-fuzz-config-XXXXXX";
    const int fd = mkstemp(pattern.data());
    if (fd < 0) {
      std::perror("mkstemp");
      std::abort();
    }
    close(fd);
    static std::string remove_at_exit;
    remove_at_exit = pattern;
    std::atexit([] { unlink(remove_at_exit.c_str()); });
    return pattern;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = ConfigPath();
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr || std::fwrite(data, 1, size, file) != size || std::fclose(file) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
  const char* argv[] = {"sockeye", "--config", path.c_str(), nullptr};
  sockeye::fuzz::CheckOutcome(sockeye::ParseCommandLine(3, argv), /*help_or_version=*/false);
  return 0;
}
