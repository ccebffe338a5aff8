// The command-line flags: their names, groups, defaults and help text, and
// --version. Every setting is bound as text (RawFlags) so that validation
// (agent/config_validate.h) can name the flag or file key a bad value came
// from in its own words.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace sockeye {

// The program name that starts every message.
inline constexpr const char* kProgram = "sockeye";

// Every setting as text, exactly as given, so that the checks in
// agent/config_validate.cc can name the offending flag or key in their own
// words.
struct RawFlags {
  std::string listen_address;
  std::string telemetry_path;
  std::string web_config_file;
  std::vector<std::string> processes;
  std::vector<std::string> include;
  std::vector<std::string> exclude;
  std::vector<std::string> pools;
  std::vector<std::string> frontend_names;  // --frontend NAME=CIDR[:PORT]
  std::string max_backends;
  std::string backend_idle_timeout;
  std::string sweep_interval;
  std::string ringbuf_size;
  std::string hot_slots;
  bool bpf_stats = false;
  bool check_only = false;
  bool keep_capabilities = false;
  bool frontends = true;
  std::vector<std::string> frontend_include;
  std::vector<std::string> frontend_exclude;
  std::string btf_path;
  std::string cgroup;
  std::string probe_mode = "auto";
  std::string sweep_iterator = "auto";
  std::string http_status_codes = "class";
  std::string log_level = "info";
  std::vector<std::string> buckets_connect_duration;
  std::vector<std::string> buckets_connection_duration;
  std::vector<std::string> buckets_time_to_first_byte;
  std::vector<std::string> buckets_response_duration;
  std::vector<std::string> buckets_rtt;
  std::vector<std::string> buckets_requests_per_connection;
};

// Sets the description, footer and layout of `app`'s help, defines every flag
// (and --config, --help, --version) bound to `raw`, and fills `raw` with the
// defaults of Config.
void DefineFlags(CLI::App* app, RawFlags* raw);

}  // namespace sockeye
