#include "agent/config_file.h"

#include <CLI/CLI.hpp>
#include <istream>
#include <map>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/config_values.h"

namespace sockeye {
namespace {

// CLI11 2.1.2 splits every key on '.' and treats the pieces as subcommand
// names, so neither "web.listen-address = ..." nor "[web] listen-address =
// ..." would reach the option "--web.listen-address". This reader glues the
// section path and the key back into the flat option name, which makes both
// spellings work, and also records which options the file set (for error
// messages) and rejects unknown keys with the key named.
class FlatTomlConfig : public CLI::ConfigTOML {
 public:
  FlatTomlConfig(const CLI::App* app, FileReport* report) : app_(app), report_(report) {
    // Comments are removed by Normalize, which knows about quotes; CLI11's
    // own stripping would cut values such as "a#b" short.
    comment('\0');
  }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::istringstream normalized(Normalize(input));
    std::vector<CLI::ConfigItem> merged;
    std::map<std::string, size_t> index;
    for (const CLI::ConfigItem& item : CLI::ConfigTOML::from_config(normalized)) {
      // "++"/"--" mark section starts and ends for subcommands; there are none.
      if (item.name == "++" || item.name == "--") continue;
      std::string key;
      for (const std::string& parent : item.parents) key += parent + ".";
      key += item.name;
      // CLI11 splits a quoted key such as "web.listen-address" inside the
      // quotes; joined again, only the quotes need to go.
      if (key.size() >= 2 && (key.front() == '"' || key.front() == '\'') &&
          key.back() == key.front()) {
        key = key.substr(1, key.size() - 2);
      }
      auto [it, inserted] = index.emplace(key, merged.size());
      if (inserted) {
        CLI::ConfigItem flat;
        flat.name = key;
        flat.inputs = item.inputs;
        merged.push_back(std::move(flat));
      } else {
        // A repeated key extends a list option; for a single-value option
        // the check below reports it.
        auto& inputs = merged[it->second].inputs;
        inputs.insert(inputs.end(), item.inputs.begin(), item.inputs.end());
      }
    }

    std::vector<CLI::ConfigItem> accepted;
    for (CLI::ConfigItem& item : merged) {
      const CLI::Option* option = app_->get_option_no_throw("--" + item.name);
      // "key = []" leaves the default (every process, no pools, default
      // buckets); CLI11 itself would fail to convert the empty list.
      if (option != nullptr && option->get_expected_max() > 1 && item.inputs.empty()) continue;
      const std::string problem = Check(&item);
      if (!problem.empty()) {
        if (report_->error.empty()) report_->error = problem;
        continue;
      }
      // CLI11 applies a file value only when the flag was not given.
      if (option->count() == 0) report_->keys.insert(item.name);
      accepted.push_back(std::move(item));
    }
    return accepted;
  }

 private:
  // CLI11 2.1.2 only continues an array onto the next line when the '[' has
  // a value after it on the same line, and keeps an empty element for a
  // trailing comma. Both are common TOML style, so arrays are put back on
  // one line, without comments and trailing commas, before CLI11 sees them.
  static std::string Normalize(std::istream& input) {
    std::string out;
    std::string line;
    while (std::getline(input, line)) {
      std::string text = StripComment(line);
      const size_t eq = text.find('=');
      if (eq != std::string::npos) {
        int depth = BracketDepth(std::string_view(text).substr(eq + 1));
        std::string more;
        while (depth > 0 && std::getline(input, more)) {
          const std::string next = StripComment(more);
          text += " " + std::string(Trim(next));
          depth += BracketDepth(next);
        }
        std::string_view value = Trim(std::string_view(text).substr(eq + 1));
        if (value.size() >= 2 && value.front() == '[' && value.back() == ']') {
          std::string_view body = Trim(value.substr(1, value.size() - 2));
          if (!body.empty() && body.back() == ',') body.remove_suffix(1);
          text = text.substr(0, eq + 1) + " [" + std::string(Trim(body)) + "]";
        }
      }
      out += text + "\n";
    }
    return out;
  }

  // The line up to a '#' that is outside quotes.
  static std::string StripComment(const std::string& line) {
    char quote = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (quote != 0) {
        if (c == '\\' && quote == '"') {
          ++i;
        } else if (c == quote) {
          quote = 0;
        }
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '#') {
        return line.substr(0, i);
      }
    }
    return line;
  }

  // '[' minus ']' outside quotes.
  static int BracketDepth(std::string_view text) {
    int depth = 0;
    char quote = 0;
    for (char c : text) {
      if (quote != 0) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '[') {
        ++depth;
      } else if (c == ']') {
        --depth;
      }
    }
    return depth;
  }

  // Returns what is wrong with one key, or "" when CLI11 may apply it.
  std::string Check(CLI::ConfigItem* item) const {
    const CLI::Option* option = app_->get_option_no_throw("--" + item->name);
    if (option == nullptr) return "unknown key " + Quote(item->name);
    const std::string where = "key " + item->name + ": ";
    if (!option->get_configurable()) return where + "cannot be set in a config file";
    const bool is_list = option->get_expected_max() > 1;
    if (option->get_expected_min() == 0) {
      if (item->inputs.size() != 1) return where + "expects true or false";
      const std::string value = ToLower(item->inputs.front());
      if (value == "true" || value == "1" || value == "yes" || value == "on") {
        item->inputs = {"true"};
      } else if (value == "false" || value == "0" || value == "no" || value == "off") {
        item->inputs = {"false"};
      } else {
        return where + Quote(item->inputs.front()) + " is not true or false";
      }
    } else if (!is_list && item->inputs.size() != 1) {
      return where + "expects a single value, got " + std::to_string(item->inputs.size());
    }
    return "";
  }

  const CLI::App* app_;
  FileReport* report_;
};

}  // namespace

std::shared_ptr<CLI::Config> MakeConfigFileReader(const CLI::App* app, FileReport* report) {
  return std::make_shared<FlatTomlConfig>(app, report);
}

}  // namespace sockeye
