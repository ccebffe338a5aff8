// Validation: turns the settings as given (RawFlags, text) into a Config,
// checking every value and its range, or reports the first problem in one
// line that names the flag or config file key it came from.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <utility>

#include "agent/config.h"
#include "agent/config_flags.h"

namespace sockeye {

// Builds one-line errors that say where the bad value came from.
class Errors {
 public:
  Errors(std::string file, const std::set<std::string>* file_keys)
      : file_(std::move(file)), file_keys_(file_keys) {}

  // "--max-backends" or "/etc/sockeye.toml: key max-backends".
  std::string Where(const std::string& key) const {
    if (file_keys_->count(key) != 0) return file_ + ": key " + key;
    return "--" + key;
  }

  bool Fail(const std::string& key, const std::string& problem) {
    return FailRaw(Where(key) + ": " + problem);
  }
  bool FailRaw(const std::string& text) {
    if (message_.empty()) message_ = std::string(kProgram) + ": " + text;
    return false;
  }

  const std::string& message() const { return message_; }

 private:
  std::string file_;
  const std::set<std::string>* file_keys_;
  std::string message_;
};

// The Config that `raw` describes, or nothing with the first problem in
// `errors`.
std::optional<Config> Validate(const RawFlags& raw, Errors* errors);

}  // namespace sockeye
