#include "agent/command_line.h"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "agent/config_file.h"
#include "agent/config_flags.h"
#include "agent/config_validate.h"
#include "agent/config_values.h"

namespace sockeye {
namespace {

ParseOutcome Usage(std::string message) {
  return ParseOutcome{std::nullopt, 2, std::move(message)};
}

std::string StripTrailingNewlines(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// CLI11 only says "was not readable (missing?)"; say why.
std::string ConfigFileError(const std::string& path) {
  std::string reason = "cannot be read";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    reason = "is a directory";
  } else if (std::FILE* file = std::fopen(path.c_str(), "r"); file == nullptr) {
    reason = std::strerror(errno);
  } else {
    std::fclose(file);
  }
  return std::string(kProgram) + ": --config: " + Quote(path) + ": " + reason;
}

std::string ExtrasMessage(const std::vector<std::string>& extras) {
  std::vector<std::string> flags;
  for (const std::string& arg : extras) {
    if (arg.size() > 1 && arg.front() == '-') flags.push_back(arg.substr(0, arg.find('=')));
  }
  const std::vector<std::string>& shown = flags.empty() ? extras : flags;
  std::string list;
  for (const std::string& arg : shown) list += (list.empty() ? "" : ", ") + Quote(arg);
  const bool plural = shown.size() > 1;
  if (flags.empty()) {
    return std::string(kProgram) + ": unexpected argument" + (plural ? "s " : " ") + list +
           " (sockeye takes no positional arguments)";
  }
  return std::string(kProgram) + ": unknown flag" + (plural ? "s " : " ") + list + " (see --help)";
}

ParseOutcome ParseOrThrow(int argc, const char* const* argv) {
  CLI::App app("", kProgram);
  app.allow_config_extras(false);
  RawFlags raw;
  FileReport report;
  DefineFlags(&app, &raw);
  app.config_formatter(MakeConfigFileReader(&app, &report));

  static const char* const kNoArgs[] = {kProgram, nullptr};
  if (argc < 1 || argv == nullptr) {
    argc = 1;
    argv = kNoArgs;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return ParseOutcome{std::nullopt, 0, StripTrailingNewlines(app.help())};
  } catch (const CLI::CallForVersion& e) {
    return ParseOutcome{std::nullopt, 0, StripTrailingNewlines(e.what())};
  } catch (const CLI::ExtrasError&) {
    return Usage(ExtrasMessage(app.remaining()));
  } catch (const CLI::FileError&) {
    return Usage(ConfigFileError(app.get_config_ptr()->as<std::string>()));
  } catch (const CLI::ParseError& e) {
    return Usage(std::string(kProgram) + ": " + StripTrailingNewlines(e.what()));
  }

  std::string config_file;
  if (app.get_config_ptr()->count() > 0) config_file = app.get_config_ptr()->as<std::string>();
  if (!report.error.empty()) {
    return Usage(std::string(kProgram) + ": " + config_file + ": " + report.error);
  }

  Errors errors(config_file, &report.keys);
  std::optional<Config> config = Validate(raw, &errors);
  if (!config) return Usage(errors.message());
  config->config_file = config_file;
  return ParseOutcome{std::move(config), 0, ""};
}

}  // namespace

ParseOutcome ParseCommandLine(int argc, const char* const* argv) {
  try {
    return ParseOrThrow(argc, argv);
  } catch (const std::exception& e) {
    // Only a bug or memory exhaustion gets here; still report, never throw.
    return ParseOutcome{std::nullopt, 1, std::string(kProgram) + ": " + e.what()};
  } catch (...) {
    return ParseOutcome{std::nullopt, 1, std::string(kProgram) + ": unexpected error"};
  }
}

}  // namespace sockeye
