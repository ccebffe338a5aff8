#include "agent/agent.h"

#include <malloc.h>

#include "agent/capabilities.h"
#include "agent/listener_collector.h"
#include "agent/log.h"
#include "agent/probes_collector.h"
#include "agent/version.h"
#include "exporters/process_collector.h"

namespace sockeye {
namespace {

using Clock = std::chrono::steady_clock;

// A full sweep every N --sweep-intervals reports all open connections, so
// connections whose close record was lost are found and retired
// (Aggregator::EndFullSweep). Counted in time, not in sweeps: slow sweeps
// are spaced out (SweepSpacing()) and retirement must not wait N of those.
constexpr unsigned kIntervalsPerFullSweep = 30;
constexpr auto kMaintenanceInterval = std::chrono::seconds(5);
// /healthz fails when the event loop has not turned for this long.
constexpr auto kStalledAfter = std::chrono::seconds(10);

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

}  // namespace

// The iter/tcp sweep (where map-element iterators are refused) visits every
// TCP socket of the namespace, time-wait ones included: with a new client
// connection per request it took 10-14 ms a sweep and 54-77 % of the agent's
// CPU (bench/HISTORY.md, 2026-12-07). Half a percent of one CPU bounds it
// whatever the socket count; the storage-map sweep stays far below.
std::chrono::nanoseconds SweepSpacing(std::chrono::nanoseconds configured,
                                      std::chrono::nanoseconds took) {
  const std::chrono::nanoseconds longest =
      std::max<std::chrono::nanoseconds>(configured, kMaxSweepSpacing);
  return std::min(std::max(configured, took * kSweepBudget), longest);
}

Agent::~Agent() {
  if (server_) server_->Stop();
}

std::unique_ptr<Agent> Agent::Start(const Config& config, std::string* error) {
  auto agent = std::make_unique<Agent>(Key{});
  agent->config_ = config;
  // Before the probes load: a broken web configuration file is reported at
  // once, by file and key.
  if (!metrics::CheckWebConfigFile(config.web_config_file, error)) return nullptr;

  LoaderSettings settings = LoaderSettingsFrom(config);
  agent->probes_ = BpfProbes::Load(settings, error);
  if (!agent->probes_) return nullptr;

  AggregatorOptions options;
  options.max_backends = config.max_backends;
  options.backend_idle_timeout = config.backend_idle_timeout;
  options.buckets = config.buckets;
  options.pools = config.pools;
  options.frontend_names = config.frontend_names;
  options.status_codes = config.http_status_codes;
  agent->aggregator_ = std::make_shared<Aggregator>(std::move(options));
  Aggregator* aggregator = agent->aggregator_.get();
  // One clock read per batch of records, not per record: per record it was
  // ~9 % of the agent's CPU time at 14,000 connections/s, in a profile under
  // the load of bench/results/proxy_cost_no_keepalive_before_agent_fixes_2026-12-06.txt
  // (bench/HISTORY.md, 2026-12-06).
  const Clock::time_point* read_at = &agent->records_read_at_;
  agent->handler_ = [aggregator, read_at](const sockeye_event& event) {
    aggregator->Handle(event, *read_at);
  };
  agent->records_read_at_ = Clock::now();

  // Before adoption, so that connections the frontend listeners accepted
  // before the agent started are adopted as frontend ones.
  if (config.frontends) {
    agent->listeners_ = std::make_shared<ListenerSelection>(
        ListenerSelectionOptions{.processes = config.processes,
                                 .include = config.frontend_include,
                                 .exclude = config.frontend_exclude,
                                 .skip_own_sockets = config.frontends_skip_own_sockets});
    agent->RefreshFrontends();
  }
  if (!agent->probes_->AdoptOpenConnections(agent->handler_, error)) {
    *error = "adopting open connections: " + *error;
    return nullptr;
  }
  LogInfo("following " + std::to_string(aggregator->open_connection_count()) +
          " connections that were open at start-up");
  // Loading parsed the kernel's BTF (several MB), all freed by now.
  malloc_trim(0);

  agent->registry_ = std::make_shared<metrics::Registry>();
  agent->registry_->Register(std::make_shared<BuildInfoCollector>());
  agent->registry_->Register(agent->aggregator_);
  agent->registry_->Register(std::make_shared<ProbesCollector>(*agent->probes_));
  agent->registry_->Register(std::make_shared<metrics::ProcessCollector>());
  if (agent->listeners_)
    agent->registry_->Register(std::make_shared<ListenerCollector>(agent->listeners_));

  metrics::HttpServerOptions http;
  http.listen_address = config.listen_address;
  http.telemetry_path = config.telemetry_path;
  http.web_config_file = config.web_config_file;
  http.version = SOCKEYE_VERSION;
  // A scrape of thousands of backends allocates megabytes of short-lived
  // model and text; glibc keeps freed memory in each server thread's arena,
  // so without this the agent's RSS stays at its largest scrape for good.
  http.after_scrape = [] { malloc_trim(0); };
  auto registry = agent->registry_;
  Agent* self = agent.get();
  agent->server_ = std::make_unique<metrics::MetricsHttpServer>(
      http, [registry] { return registry->Gather(); },
      [self]() -> std::string {
        auto stalled = std::chrono::nanoseconds(NowNs() - self->last_tick_ns_.load());
        if (stalled > kStalledAfter)
          return "event loop stalled for " + std::to_string(stalled.count() / 1000000000) + "s";
        return "";
      });
  agent->registry_->Register(agent->server_->stats_collector());
  agent->last_tick_ns_ = NowNs();
  if (!agent->server_->Start(error)) return nullptr;
  LogInfo("serving metrics on " + config.listen_address + config.telemetry_path + " (port " +
          std::to_string(agent->server_->port()) + ")");

  // Everything that needs privileges (load, attach, adoption's /proc walk,
  // binding the port) is done; sweeps and map reads work on fds we hold.
  if (!config.keep_capabilities) {
    if (!DropAllCapabilities(error)) return nullptr;
    LogInfo("dropped all capabilities (--keep-capabilities keeps them)");
  }

  agent->next_sweep_ = Clock::now() + config.sweep_interval;
  agent->last_full_sweep_ = Clock::now();
  agent->probes_->NoteSweepSpacing(config.sweep_interval);
  agent->next_maintenance_ = Clock::now() + kMaintenanceInterval;
  return agent;
}

int Agent::http_port() const { return server_->port(); }

int Agent::DrainRecords() {
  records_read_at_ = Clock::now();
  return probes_->DrainRecords(handler_);
}

void Agent::Sweep(bool full) {
  std::string error;
  if (full) aggregator_->BeginFullSweep();
  const Clock::time_point started = Clock::now();
  records_read_at_ = started;
  const uint64_t swept_ns = probes_->sweep_stats().nanoseconds;
  const bool ok = probes_->Sweep(full, handler_, &error);
  const std::chrono::nanoseconds took(probes_->sweep_stats().nanoseconds - swept_ns);
  if (!ok) LogWarn("sweep: " + error);
  // A connection a failed sweep did not reach is not closed: retire nothing.
  if (full) ok ? aggregator_->EndFullSweep() : aggregator_->AbortFullSweep();
  const std::chrono::nanoseconds spacing = SweepSpacing(config_.sweep_interval, took);
  next_sweep_ = started + spacing;
  probes_->NoteSweepSpacing(spacing);
  const bool stretched = spacing > config_.sweep_interval;
  if (stretched && !sweeps_stretched_) {
    const auto ms = [](std::chrono::nanoseconds d) {
      return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
    };
    static_assert(kSweepBudget == 200, "the message says 0.5 %");
    LogInfo("a sweep took " + ms(took) + " ms: sweeping every " + ms(spacing) +
            " ms instead of every --sweep-interval while sweeps are this slow, to keep them under "
            "0.5 % of a CPU (sockeye_sweep_interval_seconds)");
  }
  sweeps_stretched_ = stretched;
}

void Agent::RefreshFrontends() {
  if (!listeners_) return;
  std::vector<Listener> listeners;
  std::string error;
  bool ok = listeners_->Select(&listeners, &error);
  if (ok) {
    std::vector<Endpoint> addresses;
    for (const Listener& l : listeners) addresses.push_back(l.local);
    ok = probes_->SetFrontendListeners(addresses, &error);
    aggregator_->SetListeners(std::move(addresses));
  }
  // Once: it fails the same way every interval (no tcp_diag, say).
  if (!ok && !warned_listeners_) {
    warned_listeners_ = true;
    LogWarn("frontends: " + error + "; accepted connections are not followed");
  }
}

void Agent::Tick(int timeout_ms) {
  int n = probes_->WaitForRecords(timeout_ms);
  if (n < 0 && n != -EINTR) LogWarn("ring buffer wait failed: " + std::to_string(-n));
  n = DrainRecords();
  if (n < 0) LogWarn("ring buffer read failed: " + std::to_string(-n));
  auto now = Clock::now();
  last_tick_ns_ = NowNs();
  if (now >= next_sweep_) {
    next_sweep_ = now + config_.sweep_interval;  // Sweep() stretches it when sweeps are slow
    RefreshFrontends();
    const bool anything_to_sweep = aggregator_->StartSweepInterval();
    if (now - last_full_sweep_ >= config_.sweep_interval * kIntervalsPerFullSweep) {
      last_full_sweep_ = now;
      DrainRecords();  // let pending close records land first
      Sweep(true);
    } else if (anything_to_sweep) {
      Sweep(false);
    } else {
      probes_->NoteSweepSkipped();
      probes_->NoteSweepSpacing(config_.sweep_interval);
    }
  }
  if (now >= next_maintenance_) {
    next_maintenance_ = now + kMaintenanceInterval;
    aggregator_->Maintain(now);
  }
}

void Agent::Flush(bool full_sweep) {
  while (DrainRecords() > 0) {
  }
  Sweep(full_sweep);
}

void Agent::Reload(const Config& config) {
  std::string error;
  if (!probes_->UpdateFilters(LoaderSettingsFrom(config), &error)) {
    LogError("reload: keeping the previous filters: " + error);
  }
  aggregator_->SetPools(config.pools, config.frontend_names);
  if (!server_->ReloadWebConfig(config.web_config_file, &error)) {
    LogError("reload: keeping the previous web configuration: " + error);
  } else if (!config.web_config_file.empty()) {
    LogInfo("web configuration reloaded from " + config.web_config_file +
            " (new connections and requests; TLS sessions already open keep theirs)");
  }
  LogInfo("configuration reloaded: " + std::to_string(config.processes.size()) + " processes, " +
          std::to_string(config.include.size()) + " includes, " +
          std::to_string(config.exclude.size()) + " excludes, " +
          std::to_string(config.pools.size()) + " pool mappings (probes stay attached)");
}

}  // namespace sockeye
