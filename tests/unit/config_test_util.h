// Test helpers for the settings tests: ParseCommandLine called with a plain
// argument list, checks on its one-line usage errors, and a temporary
// directory for config files.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <system_error>
#include <vector>

#include "agent/address.h"
#include "agent/command_line.h"
#include "agent/config.h"

namespace sockeye::config_test_util {

// gmock is not linked, so a small stand-in for HasSubstr.
inline ::testing::AssertionResult Contains(const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\" does not contain \"" << needle << "\"";
}

inline ParseOutcome Parse(std::initializer_list<std::string> args) {
  std::vector<std::string> storage = {"sockeye"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<const char*> argv;
  for (const std::string& arg : storage) argv.push_back(arg.c_str());
  argv.push_back(nullptr);
  return ParseCommandLine(static_cast<int>(storage.size()), argv.data());
}

inline Config MustParse(std::initializer_list<std::string> args) {
  ParseOutcome outcome = Parse(args);
  EXPECT_TRUE(outcome.config.has_value()) << outcome.message;
  return outcome.config.value_or(Config{});
}

// Expects a usage error: exit 2 and a single line that contains `needle`.
inline void ExpectUsageError(const ParseOutcome& outcome, const std::string& needle) {
  EXPECT_FALSE(outcome.config.has_value());
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_EQ(outcome.message.find('\n'), std::string::npos) << outcome.message;
  EXPECT_EQ(outcome.message.rfind("sockeye: ", 0), 0u) << outcome.message;
  EXPECT_TRUE(Contains(outcome.message, needle));
}

inline std::vector<std::string> Texts(const std::vector<CidrMatch>& matches) {
  std::vector<std::string> out;
  for (const CidrMatch& m : matches) out.push_back(m.ToString());
  return out;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "sockeye-config-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string Write(const std::string& name, const std::string& contents) const {
    const std::string file = (path_ / name).string();
    std::ofstream(file) << contents;
    return file;
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace sockeye::config_test_util
