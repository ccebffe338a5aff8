// Everything the operator can set, from flags and from the --config file, as
// plain types with their defaults. ParseCommandLine (agent/command_line.h)
// fills them in: flags in agent/config_flags.h, the file in
// agent/config_file.h, checks in agent/config_validate.h.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/address.h"

namespace sockeye {

struct PoolMapping {
  std::string name;
  CidrMatch match;
};

struct HistogramBuckets {
  // Upper bounds in base units (seconds, or a plain count), strictly increasing.
  std::vector<double> connect_duration;
  std::vector<double> connection_duration;
  std::vector<double> time_to_first_byte;
  std::vector<double> response_duration;
  std::vector<double> rtt;
  std::vector<double> requests_per_connection;
};

HistogramBuckets DefaultHistogramBuckets();

// Which send hook marks a request's start. kAuto and kSegment attach none: a
// request is noticed at the backend's next segment (by the receive hook) and
// timed from the socket's last transmit, the cheapest way (bench/HISTORY.md,
// 2026-11-23, "no send hook by default"; bench/README.md#current-results).
// The others force one send hook, which times a request written in pieces
// from its first write.
enum class ProbeMode { kAuto, kTracepoint, kFentry, kKprobe, kSegment };
const char* ProbeModeName(ProbeMode mode);
// The mode ProbeModeName() calls `name`, if any.
std::optional<ProbeMode> ProbeModeFromName(std::string_view name);

// Which iterator the periodic sweep walks (bpf/conn_sweep.bpf.c). kAuto
// takes the socket-storage one (only followed sockets) where the kernel
// allows map-element iterators, else the TCP hash tables.
enum class SweepIterator { kAuto, kSocketStorage, kTcp };

// The `code` label of sockeye_backend_responses_total: the status class
// (1xx..5xx, other), the three digits, or no status program at all.
enum class HttpStatusCodes { kClass, kExact, kOff };
const char* HttpStatusCodesName(HttpStatusCodes codes);
std::optional<HttpStatusCodes> HttpStatusCodesFromName(std::string_view name);
const char* SweepIteratorName(SweepIterator iterator);
std::optional<SweepIterator> SweepIteratorFromName(std::string_view name);

enum class LogLevel { kDebug, kInfo, kWarn, kError };

struct Config {
  std::string config_file;  // empty when none was given
  std::string listen_address = ":19480";
  std::string telemetry_path = "/metrics";
  // exporter-toolkit's web configuration file (TLS, Basic authentication,
  // headers; exporters/web_config.h); empty when none was given.
  std::string web_config_file;
  std::vector<std::string> processes;  // comm names, at most 8, each <= 15 chars
  std::vector<CidrMatch> include;      // empty = every backend
  std::vector<CidrMatch> exclude;
  std::vector<PoolMapping> pools;  // first match wins
  size_t max_backends = 5000;
  std::chrono::seconds backend_idle_timeout{600};
  std::chrono::milliseconds sweep_interval{1000};
  // The ring is mapped twice by libbpf (wrap-around), so it shows as 2x in
  // RSS; 4 MiB holds ~18,700 records (224 B with the ring's header), while the
  // agent drains it every 100 ms.
  size_t ringbuf_bytes = 4u << 20;  // power of two, >= 4096
  // Open connections whose per-segment state can sit in an array slot
  // rather than in socket storage (bpf/hot_slots.bpf.h): 280 bytes
  // each, kernel memory. A power of two; 0 turns the slots off.
  uint32_t hot_slots = 8192;
  bool bpf_stats = false;
  bool check_only = false;         // --check: report what would be attached, then exit
  std::string btf_path;            // --btf-path: kernel BTF when /sys/kernel/btf/vmlinux is absent
  std::string cgroup;              // --cgroup: where the status programs attach (empty: v2 root)
  bool keep_capabilities = false;  // --keep-capabilities: do not drop them after attaching
  // The client side: the listeners' saturation (agent/listener_collector.h)
  // and the connections they accept (agent/listener_selection.h).
  bool frontends = true;
  std::vector<CidrMatch> frontend_include;
  std::vector<CidrMatch> frontend_exclude;
  // --frontend: the `frontend` label of the listeners each names; first match wins.
  std::vector<PoolMapping> frontend_names;
  // Not a flag: tests whose servers run in the agent's own process turn it
  // off; the agent's metrics listener is otherwise never a frontend.
  bool frontends_skip_own_sockets = true;
  ProbeMode probe_mode = ProbeMode::kAuto;
  SweepIterator sweep_iterator = SweepIterator::kAuto;
  HttpStatusCodes http_status_codes = HttpStatusCodes::kClass;
  LogLevel log_level = LogLevel::kInfo;
  HistogramBuckets buckets = DefaultHistogramBuckets();
};

}  // namespace sockeye
