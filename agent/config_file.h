// The --config file: a TOML reader that CLI11 calls while it parses, which
// maps keys onto the long flag names and records what the file set.
#pragma once

#include <memory>
#include <set>
#include <string>

namespace CLI {
class App;
class Config;
}  // namespace CLI

namespace sockeye {

// What the config file contributed, collected while CLI11 reads it.
struct FileReport {
  std::set<std::string> keys;  // options whose value came from the file
  std::string error;           // first problem, naming the key; empty if none
};

// The reader to hand to CLI::App::config_formatter(). It looks keys up in
// `app` (which must outlive it) and writes to `report`. Keys are the long
// flag names, flat ("web.listen-address") or split into a section ("[web]",
// then "listen-address"); an unknown key is an error in `report`, never an
// exception.
std::shared_ptr<CLI::Config> MakeConfigFileReader(const CLI::App* app, FileReport* report);

}  // namespace sockeye
