// LoopbackTraffic: which probes attach (and the fallbacks when the kernel
// refuses one), the HTTP scrape, and a reload that changes the filters.
#include <bpf/btf.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <string>

#include "agent/address.h"
#include "loopback_fixture.h"

namespace sockeye {
namespace {

using namespace std::chrono_literals;
using testing::Behavior;
using testing::Client;
using testing::ClientWait;
using testing::kClockSlack;
using testing::LoopbackServer;
using testing::LoopbackTraffic;
using testing::Value;

// Whether the running kernel has a tracepoint (its btf_trace_ typedef).
bool KernelHasTracepoint(const std::string& name) {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return false;
  const bool found =
      btf__find_by_name_kind(vmlinux, ("btf_trace_" + name).c_str(), BTF_KIND_TYPEDEF) > 0;
  btf__free(vmlinux);
  return found;
}

// Asking for the socket-storage sweep either gets it or fails to start with
// an error that names the kernel's refusal (some 6.18 builds refuse
// map-element iterators); it never falls back silently.
TEST_F(LoopbackTraffic, ForcedSocketStorageSweepRunsOrNamesTheRefusal) {
  const std::string error =
      TryStartAgent([](Config& config) { config.sweep_iterator = SweepIterator::kSocketStorage; });
  if (!agent_) {
    // Refused by this kernel, or absent from it (before 5.9).
    EXPECT_NE(error.find("--sweep-iterator socket-storage is not available: "), std::string::npos)
        << error;
    EXPECT_NE(error.find("iter/bpf_sk_storage_map"), std::string::npos) << error;
    return;
  }
  EXPECT_EQ(Value(agent_->Gather(), "sockeye_probe_info",
                  {{"hook", "sweep"}, {"mode", "iter"}, {"target", "bpf_sk_storage_map"}}),
            1);
}

// The kernel probes only load a two-instruction program, so the real receive
// or sweep program can still be refused; the agent then starts with
// tcp_probe and the sweep over iter/tcp, and counts as exactly as ever.
// SOCKEYE_TEST_REFUSE_ATTACH stands in for such a kernel. On this host auto
// mode times responses at sk_data_ready and its socket-storage sweep is
// refused anyway; in the kernel matrix (6.1, 5.15) the refused programs are
// fentry on sock_def_readable and the socket-storage sweep.
TEST_F(LoopbackTraffic, ReceiveAndSweepProgramsThatWillNotAttachFallBack) {
  struct RefuseAttach {
    RefuseAttach() {
      setenv("SOCKEYE_TEST_REFUSE_ATTACH",
             "on_sk_data_ready,on_sock_def_readable_fentry,sweep_connections", 1);
    }
    ~RefuseAttach() { unsetenv("SOCKEYE_TEST_REFUSE_ATTACH"); }
  } refuse;
  StartAgent();
  if (!agent_) return;
  auto families = agent_->Gather();
  EXPECT_EQ(Value(families, "sockeye_probe_info",
                  {{"hook", "receive"}, {"mode", "tp_btf"}, {"target", "tcp_probe"}}),
            1);
  EXPECT_EQ(Value(families, "sockeye_probe_info",
                  {{"hook", "sweep"}, {"mode", "iter"}, {"target", "tcp"}}),
            1);
  LoopbackServer server("127.0.0.3", Behavior::kRespond, 40ms);
  std::map<std::string, std::string> a{{"backend", Backend(server)}};
  std::chrono::duration<double> waited{0};
  {
    Client client(server.address(), server.port());
    ASSERT_TRUE(client.connected());
    for (int i = 0; i < 5; ++i) {
      const ClientWait wait(waited);
      ASSERT_EQ(client.Request(20, 100), 100u);
    }
  }
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_closed_total",
                          {{"backend", Backend(server)}, {"closed_by", "local"}}, 1),
            1);
  EXPECT_EQ(Metric("sockeye_backend_requests_total", a), 5);
  EXPECT_EQ(Metric("sockeye_backend_sent_bytes_total", a), 5 * 20);
  EXPECT_EQ(Metric("sockeye_backend_received_bytes_total", a), 5 * 100);
  EXPECT_EQ(WaitForMetric("sockeye_backend_time_to_first_byte_seconds_count", a, 5), 5);
  const double mean = Metric("sockeye_backend_time_to_first_byte_seconds_sum", a) / 5;
  EXPECT_GE(mean, 0.040);
  EXPECT_LE(mean, waited.count() / 5 + kClockSlack);
}

TEST_F(LoopbackTraffic, ProbeChoicesAndHttpScrape) {
  StartAgent();
  if (!agent_) return;
  auto families = agent_->Gather();
  EXPECT_EQ(
      Value(families, "sockeye_probe_info", {{"hook", "connection_state"}, {"mode", "tp_btf"}}), 1);
  // The VM matrix sets the send-hook mode it expects on that kernel, so a
  // silent fallback to another mode fails here.
  const char* expected_send = std::getenv("SOCKEYE_TEST_EXPECT_SEND_MODE");
  if (!expected_send && !std::getenv("SOCKEYE_TEST_PROBE_MODE"))
    expected_send = "off";  // the default attaches no send hook
  if (expected_send) {
    EXPECT_EQ(Value(families, "sockeye_probe_info", {{"hook", "send"}, {"mode", expected_send}}), 1)
        << "send hook is not attached as " << expected_send;
  }
  // Responses are timed at sk_data_ready by default where the kernel has it,
  // else at fentry on sock_def_readable where fentry is allowed, else (and in
  // every other probe mode) at tcp_probe. The VM matrix names the one it
  // expects; without that, a kernel without the tracepoint may show either.
  const auto receive_at = [&](const std::string& mode, const std::string& target) {
    return Value(families, "sockeye_probe_info",
                 {{"hook", "receive"}, {"mode", mode}, {"target", target}});
  };
  const char* probe_mode = std::getenv("SOCKEYE_TEST_PROBE_MODE");
  const bool auto_mode = !probe_mode || std::string(probe_mode) == "auto";
  if (const char* receive = std::getenv("SOCKEYE_TEST_EXPECT_RECEIVE")) {
    const std::string text = receive;  // "MODE TARGET"
    const size_t space = text.find(' ');
    ASSERT_NE(space, std::string::npos) << "SOCKEYE_TEST_EXPECT_RECEIVE is \"MODE TARGET\"";
    EXPECT_EQ(receive_at(text.substr(0, space), text.substr(space + 1)), 1)
        << "responses are not timed at " << text;
  } else if (auto_mode && KernelHasTracepoint("sk_data_ready")) {
    EXPECT_EQ(receive_at("tp_btf", "sk_data_ready"), 1);
  } else if (auto_mode) {
    EXPECT_TRUE(receive_at("fentry", "sock_def_readable") == 1 ||
                receive_at("tp_btf", "tcp_probe") == 1);
  } else {
    EXPECT_EQ(receive_at("tp_btf", "tcp_probe"), 1);
  }
  // The VM matrix sets the sweep it expects (socket storage on 6.1), so a
  // probe that wrongly finds the storage iterator refused fails here.
  if (const char* sweep = std::getenv("SOCKEYE_TEST_EXPECT_SWEEP")) {
    EXPECT_EQ(Value(families, "sockeye_probe_info",
                    {{"hook", "sweep"}, {"mode", "iter"}, {"target", sweep}}),
              1)
        << "the sweep does not walk " << sweep;
  }
  LoopbackServer server("127.0.0.2");
  {
    Client client(server.address(), server.port());
    ASSERT_EQ(client.Request(10, 10), 10u);
  }
  WaitForMetric("sockeye_backend_connections_active", {{"backend", Backend(server)}}, 0);
  httplib::Client http("127.0.0.1", agent_->http_port());
  auto response = http.Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_NE(response->body.find("sockeye_backend_requests_total{backend=\"" + Backend(server) +
                                "\"} 1\n"),
            std::string::npos)
      << response->body.substr(0, 2000);
}

// SIGHUP's path: new filters apply to the next connects, probes stay.
TEST_F(LoopbackTraffic, ReloadChangesFiltersWithoutDetaching) {
  std::string error;
  StartAgent([&](Config& config) { config.include = {*ParseCidrMatch("127.0.0.2/32", &error)}; });
  if (!agent_) return;
  LoopbackServer two("127.0.0.2");
  LoopbackServer three("127.0.0.3");
  auto connect_once = [](const LoopbackServer& server) {
    Client client(server.address(), server.port());
    ASSERT_EQ(client.Request(10, 10), 10u);
  };
  connect_once(two);
  connect_once(three);
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_established_total",
                          {{"backend", Backend(two)}}, 1),
            1);
  EXPECT_EQ(Metric("sockeye_backend_connections_established_total", {{"backend", Backend(three)}}),
            -1);

  Config reloaded;
  reloaded.include = {*ParseCidrMatch("127.0.0.3/32", &error)};
  agent_->Reload(reloaded);
  connect_once(two);
  connect_once(three);
  EXPECT_EQ(WaitForMetric("sockeye_backend_connections_established_total",
                          {{"backend", Backend(three)}}, 1),
            1);
  EXPECT_EQ(Metric("sockeye_backend_connections_established_total", {{"backend", Backend(two)}}),
            1);  // its counter is kept, the new connect was not followed
}

}  // namespace
}  // namespace sockeye
