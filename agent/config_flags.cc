#include "agent/config_flags.h"

#include <CLI/CLI.hpp>

#include "agent/config.h"
#include "agent/config_values.h"
#include "agent/version.h"

namespace sockeye {
namespace {

std::string VersionLine() {
  return std::string(kProgram) + " " + SOCKEYE_VERSION + " (" + SOCKEYE_REVISION + ")";
}

constexpr const char* kDescription =
    "sockeye traces the TCP connections that local processes open to their backends "
    "(upstream servers, databases, caches) with eBPF, without touching the processes or "
    "the traffic, and serves per-backend metrics to Prometheus: connects and their "
    "failures, connect time, time to first byte, round-trip time, requests per connection "
    "and connection lifetimes, labelled by backend address and optional pool name. Every "
    "setting can also be given in a TOML file passed with --config; flags on the command "
    "line win over the file.";

constexpr const char* kFooter =
    "Example:\n"
    "  sockeye --process nginx --pool api=10.1.0.0/24:8080 --exclude 127.0.0.0/8 \\\n"
    "          --web.listen-address 127.0.0.1:19480\n"
    "\n"
    "Config file example (keys are the long flag names; \"web.listen-address\" may also\n"
    "be written as listen-address inside a [web] section):\n"
    "  process = [\"nginx\", \"haproxy\"]\n"
    "  pool = [\"api=10.1.0.0/24:8080\"]\n"
    "  web.listen-address = \"127.0.0.1:19480\"\n"
    "  buckets.rtt = [0.0001, 0.001, 0.01, 0.1]";

}  // namespace

void DefineFlags(CLI::App* app, RawFlags* raw) {
  app->description(kDescription);
  app->footer(kFooter);
  app->get_formatter()->column_width(44);

  const Config defaults;
  raw->listen_address = defaults.listen_address;
  raw->telemetry_path = defaults.telemetry_path;
  raw->max_backends = std::to_string(defaults.max_backends);
  raw->backend_idle_timeout = FormatDuration(defaults.backend_idle_timeout);
  raw->sweep_interval = FormatDuration(defaults.sweep_interval);
  raw->ringbuf_size = FormatSize(defaults.ringbuf_bytes);
  raw->hot_slots = std::to_string(defaults.hot_slots);

  // Scalars: the last occurrence wins, as with most Unix tools, so wrappers
  // can append overrides. Lists take exactly one value per occurrence so a
  // stray word is reported instead of being swallowed as another entry.
  const auto scalar = [](CLI::Option* option) {
    return option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)->capture_default_str();
  };
  // option_text replaces CLI11's "TYPE ..." label, which would suggest that
  // one flag takes several words.
  const auto list = [](CLI::Option* option, const std::string& label) {
    return option->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->option_text(label);
  };

  app->set_config("--config", "",
                  "Read settings from this TOML file (default: none). Keys are the long "
                  "flag names without dashes, e.g. max-backends = 100 or "
                  "web.listen-address = \":9100\"; dotted names may also be split into a "
                  "section, e.g. [web] then listen-address = \":9100\". Lists are arrays. "
                  "Unknown keys are errors.")
      ->type_name("FILE");

  const std::string web = "Web";
  scalar(app->add_option("--web.listen-address", raw->listen_address,
                         "Address to serve metrics on, HOST:PORT; an empty host means all "
                         "interfaces, IPv6 hosts go in brackets ([::1]:19480)"))
      ->type_name("ADDR")
      ->group(web);
  scalar(app->add_option("--web.telemetry-path", raw->telemetry_path,
                         "HTTP path that serves the metrics; must start with '/' and cannot be "
                         "\"/\" or \"/healthz\""))
      ->type_name("PATH")
      ->group(web);
  scalar(app->add_option("--web.config.file", raw->web_config_file,
                         "exporter-toolkit web configuration file (YAML) that turns on TLS, "
                         "client certificates, Basic authentication and extra headers, as for "
                         "node_exporter; re-read on SIGHUP (docs/security.md) (default: none, "
                         "plain HTTP open to all)"))
      ->type_name("FILE")
      ->group(web);

  const std::string selection = "Selection";
  list(app->add_option("--process", raw->processes,
                       "Only trace connections made by processes with this command name "
                       "(comm, 1-15 characters); repeatable, at most 8 (default: every process)"),
       "NAME")
      ->group(selection);
  list(app->add_option("--include", raw->include,
                       "Only track backends in this network, e.g. 10.0.0.0/8 or "
                       "[2001:db8::/32]:443; repeatable (default: every backend)"),
       "CIDR[:PORT]")
      ->group(selection);
  list(app->add_option("--exclude", raw->exclude,
                       "Never track backends in this network, even if included; repeatable. "
                       "At most 32 --include and --exclude in total (default: none)"),
       "CIDR[:PORT]")
      ->group(selection);
  app->add_flag(
         "--frontends,!--no-frontends", raw->frontends,
         "Follow the connections the listeners accept and serve their accept queues and drops "
         "(sockeye_frontend_*); "
         "--frontends=false turns them off (default: true)")
      ->group(selection);
  list(app->add_option("--frontend-include", raw->frontend_include,
                       "Only report listeners bound in this network, e.g. 0.0.0.0/0:443 (any "
                       "IPv4 address, port 443, wildcard listeners included); repeatable "
                       "(default: every listener)"),
       "CIDR[:PORT]")
      ->group(selection);
  list(app->add_option("--frontend-exclude", raw->frontend_exclude,
                       "Never report listeners bound in this network; repeatable (default: none)"),
       "CIDR[:PORT]")
      ->group(selection);
  list(app->add_option("--frontend", raw->frontend_names,
                       "Label listeners bound in this network with frontend=NAME (NAME as for "
                       "--pool; the first match wins); repeatable (default: none)"),
       "NAME=CIDR[:PORT]")
      ->group(selection);
  list(app->add_option("--pool", raw->pools,
                       "Label backends in this network with pool=NAME; NAME matches "
                       "[a-zA-Z_][a-zA-Z0-9_.-]*, several networks may share a NAME, and the "
                       "first match wins; repeatable (default: none)"),
       "NAME=CIDR[:PORT]")
      ->group(selection);

  const std::string tracking = "Tracking";
  scalar(app->add_option("--max-backends", raw->max_backends,
                         "Most backends tracked at once (1-1000000)"))
      ->type_name("N")
      ->group(tracking);
  scalar(app->add_option("--backend-idle-timeout", raw->backend_idle_timeout,
                         "Forget a backend (and its series) after it has seen no connection for "
                         "this long, 1s to 168h; e.g. 500ms, 30s, 5m, 1h, or plain seconds"))
      ->type_name("DURATION")
      ->group(tracking);
  scalar(app->add_option("--sweep-interval", raw->sweep_interval,
                         "How often to drain kernel state and expire idle backends, 100ms to 60s"))
      ->type_name("DURATION")
      ->group(tracking);
  scalar(app->add_option("--ringbuf-size", raw->ringbuf_size,
                         "Size of the kernel-to-agent event ring buffer: bytes or a "
                         "K/KiB/M/MiB/G/GiB suffix, a power of two from 4KiB to 1GiB"))
      ->type_name("SIZE")
      ->group(tracking);
  scalar(app->add_option("--hot-slots", raw->hot_slots,
                         "Open backend connections whose per-segment state sits in a kernel array "
                         "slot (280 bytes each) instead of socket storage, the cheaper path per "
                         "received segment; the rest fall back, counted in "
                         "sockeye_hot_slot_fallbacks_total. A power of two up to 1048576, 0 = off"))
      ->type_name("N")
      ->group(tracking);
  app->add_flag("--bpf-stats", raw->bpf_stats,
                "Enable kernel BPF run-time statistics and export them (default: off)")
      ->group(tracking);
  app->add_flag("--check", raw->check_only,
                "Probe the kernel, load and attach every program the agent would use, print a "
                "report (kernel, BTF, each hook and its mode, what is missing and what that "
                "costs, capabilities) and exit: 0 if the agent can run here")
      ->group(tracking);
  scalar(app->add_option("--btf-path", raw->btf_path,
                         "Kernel BTF file to use when the kernel has no /sys/kernel/btf/vmlinux "
                         "(e.g. from btfhub or the distribution's debug packages)"))
      ->type_name("FILE")
      ->group(tracking);
  scalar(app->add_option("--cgroup", raw->cgroup,
                         "cgroup v2 directory to attach the HTTP status programs to, e.g. the "
                         "proxy's service (default: the hierarchy's root, every process); "
                         "sockets of processes outside it are not read"))
      ->type_name("DIR")
      ->group(tracking);
  app->add_flag("--keep-capabilities", raw->keep_capabilities,
                "Keep capabilities after the probes are attached (default: drop them all, "
                "nothing later needs them)")
      ->group(tracking);
  scalar(app->add_option("--probe-mode", raw->probe_mode,
                         "auto (the cheapest: no send hook; responses timed at sk_data_ready "
                         "where the kernel has it, else at fentry sock_def_readable where "
                         "fentry is allowed, else tcp_probe), segment (no send "
                         "hook, tcp_probe), or a send hook to time requests written in "
                         "pieces from their first write: tracepoint, fentry, kprobe"))
      ->type_name("MODE")
      ->group(tracking);
  scalar(app->add_option("--sweep-iterator", raw->sweep_iterator,
                         "What the periodic sweep walks: socket-storage (only followed "
                         "sockets), tcp (every socket in TCP's hash tables of the agent's network "
                         "namespace, for kernels that refuse map-element iterators), or auto "
                         "(the first this kernel allows)"))
      ->type_name("ITERATOR")
      ->group(tracking);
  scalar(app->add_option("--http-status-codes", raw->http_status_codes,
                         "The code label of sockeye_backend_responses_total: class (1xx..5xx, "
                         "other), exact (the three digits: at most 900 values per backend), or "
                         "off (no status program is loaded)"))
      ->type_name("CODES")
      ->group(tracking);
  scalar(app->add_option("--log.level", raw->log_level,
                         "Least severe log messages to print: debug, info, warn or error"))
      ->type_name("LEVEL")
      ->group(tracking);

  // The defaults only appear in the label: the bound vectors stay empty
  // unless the operator sets them, which is how "not given" is recognised.
  const std::string histograms =
      "Histograms (bucket upper bounds, comma-separated, "
      "finite, > 0, strictly increasing, at most 64)";
  const auto buckets = [&](const std::string& name, std::vector<std::string>* values,
                           const std::string& help, const std::vector<double>& default_bounds) {
    list(app->add_option(name, *values, help), "LIST=" + JoinNumbers(default_bounds))
        ->delimiter(',')
        ->group(histograms);
  };
  buckets("--buckets.connect-duration", &raw->buckets_connect_duration, "Connect duration, seconds",
          defaults.buckets.connect_duration);
  buckets("--buckets.connection-duration", &raw->buckets_connection_duration,
          "Connection lifetime, seconds", defaults.buckets.connection_duration);
  buckets("--buckets.time-to-first-byte", &raw->buckets_time_to_first_byte,
          "Time from the start of a request to the first byte of its response, seconds",
          defaults.buckets.time_to_first_byte);
  buckets("--buckets.response-duration", &raw->buckets_response_duration,
          "Time from the start of a request to the last byte of its response, seconds",
          defaults.buckets.response_duration);
  buckets("--buckets.rtt", &raw->buckets_rtt, "Smoothed round-trip time, seconds",
          defaults.buckets.rtt);
  buckets("--buckets.requests-per-connection", &raw->buckets_requests_per_connection,
          "Requests per connection, a count", defaults.buckets.requests_per_connection);

  app->set_version_flag("--version", VersionLine(), "Print the version and exit");
  app->get_help_ptr()->description("Print this help and exit")->configurable(false);
}

}  // namespace sockeye
