// The settings given as flags: the small parsers one at a time (CIDR,
// endpoint, duration, size, bucket list), and the command line as a whole.
// The first byte picks which; the rest is the text. Whatever a parser
// accepts must print in a form that parses back to the same value.
#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/address.h"
#include "agent/command_line.h"
#include "agent/config_flags.h"
#include "agent/config_validate.h"
#include "agent/config_values.h"
#include "settings_checks.h"

namespace {

using sockeye::fuzz::Violation;

std::vector<std::string> Split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  while (true) {
    const size_t at = text.find(separator);
    parts.emplace_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

void Cidr(std::string_view text) {
  std::string error;
  const auto match = sockeye::ParseCidrMatch(text, &error);
  if (!match) {
    if (error.empty()) Violation("CIDR rejected without a reason", std::string(text));
    return;
  }
  if (match->prefix_len > 128) Violation("prefix over 128", std::string(text));
  const std::string shown = match->ToString();
  const auto again = sockeye::ParseCidrMatch(shown, &error);
  if (!again || again->addr != match->addr || again->prefix_len != match->prefix_len ||
      again->port != match->port) {
    Violation("CIDR does not survive ToString()", std::string(text) + " -> " + shown);
  }
  // The network contains its own address.
  sockeye::Endpoint self;
  self.addr = match->addr;
  self.port = match->port;
  if (!match->Contains(self)) Violation("CIDR does not contain its network", shown);
}

void EndpointText(std::string_view text) {
  const auto endpoint = sockeye::ParseEndpoint(text);
  if (!endpoint) return;
  const std::string shown = sockeye::FormatEndpoint(*endpoint);
  const auto again = sockeye::ParseEndpoint(shown);
  if (!again || !(*again == *endpoint)) {
    Violation("endpoint does not survive FormatEndpoint()", std::string(text) + " -> " + shown);
  }
}

void Duration(std::string_view text) {
  const auto duration = sockeye::ParseDuration(text);
  if (!duration) return;
  if (duration->count() < 0) Violation("negative duration", std::string(text));
  const std::string shown = sockeye::FormatDuration(*duration);
  const auto again = sockeye::ParseDuration(shown);
  if (!again || *again != *duration) {
    Violation("duration does not survive FormatDuration()", std::string(text) + " -> " + shown);
  }
}

void Size(std::string_view text) {
  sockeye::ParseUnsigned(text);
  sockeye::ValidPoolName(text);
  const auto size = sockeye::ParseSize(text);
  if (!size || *size == UINT64_MAX) return;  // saturated: reported as too large
  const std::string shown = sockeye::FormatSize(*size);
  const auto again = sockeye::ParseSize(shown);
  if (!again || *again != *size) {
    Violation("size does not survive FormatSize()", std::string(text) + " -> " + shown);
  }
}

// A bucket list as CLI11 hands it over (split at commas) through the same
// validation as every other setting.
void Buckets(std::string_view text) {
  // The defaults of every other setting, as the flags' definitions set them.
  static const sockeye::RawFlags defaults = [] {
    sockeye::RawFlags raw;
    CLI::App app;
    sockeye::DefineFlags(&app, &raw);
    return raw;
  }();
  sockeye::RawFlags raw = defaults;
  raw.buckets_rtt = Split(text, ',');
  const std::set<std::string> no_file_keys;
  sockeye::Errors errors("", &no_file_keys);
  const auto config = sockeye::Validate(raw, &errors);
  if (config) {
    sockeye::fuzz::CheckBounds(config->buckets.rtt, std::string(text));
  } else if (errors.message().empty()) {
    Violation("bucket list rejected without a reason", std::string(text));
  }
}

// One argument a line. --config is left out: it would read any file the
// input names (/dev/stdin waits forever); fuzz_config_file covers the file.
void CommandLine(std::string_view text) {
  std::vector<std::string> args = {"sockeye"};
  for (std::string& arg : Split(text, '\n')) {
    if (arg.rfind("--config", 0) != 0) args.push_back(std::move(arg));
  }
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  argv.push_back(nullptr);
  sockeye::fuzz::CheckOutcome(sockeye::ParseCommandLine(static_cast<int>(args.size()), argv.data()),
                              /*help_or_version=*/true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0:
      Cidr(text);
      break;
    case 1:
      EndpointText(text);
      break;
    case 2:
      Duration(text);
      break;
    case 3:
      Size(text);
      break;
    case 4:
      Buckets(text);
      break;
    default:
      CommandLine(text);
      break;
  }
  return 0;
}
