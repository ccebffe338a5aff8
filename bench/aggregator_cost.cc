// The agent's user-space cost per short connection: the records one
// connection sends (CONNECTED, then CLOSED carrying its one turn, final)
// handed to Aggregator::Handle() as the event thread does, for a backend
// connection and for a frontend (accepted) one. No kernel, no ring buffer:
// what the aggregator itself adds per connection.
//
//   build/bench/aggregator_cost [CONNECTIONS=1000000] [ROUNDS=5]
//
// Rounds alternate the two kinds in one process; each prints ns per
// connection, so the spread shows the machine's noise.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "agent/aggregator.h"
#include "tests/unit/aggregator_test_util.h"

namespace {

using Clock = std::chrono::steady_clock;

using sockeye::aggregator_test_util::V4;

// One connection's records, as the kernel writes them for a request of
// 80 bytes answered with 1,200 and a 200 status.
void Connection(sockeye::Aggregator& agg, uint64_t conn_id, bool frontend, Clock::time_point now) {
  sockeye_event e{};
  e.kind = SOCKEYE_EV_CONNECTED;
  e.flags = frontend ? SOCKEYE_EVF_FRONTEND : 0;
  e.conn_id = conn_id;
  e.duration_ns = frontend ? 0 : 40000;
  e.srtt_us = 30;
  // Two backends, as the proxy benchmark's nginx has; the frontend's local
  // endpoint is its listener's.
  e.backend = frontend ? V4(127, 0, 0, 40, 8000) : V4(127, 0, 0, 41 + (conn_id & 1), 8080);
  agg.Handle(e, now);

  e.kind = SOCKEYE_EV_CLOSED;
  e.flags |= SOCKEYE_EVF_CLOSED | SOCKEYE_EVF_FINAL;
  e.closed_by = frontend ? SOCKEYE_CLOSED_BY_LOCAL : SOCKEYE_CLOSED_BY_REMOTE;
  e.duration_ns = 300000;
  e.totals.bytes_sent = frontend ? 1200 : 80;
  e.totals.bytes_received = frontend ? 80 : 1200;
  e.totals.requests = 1;
  e.turn_count = 1;
  e.turns[0].ttfb_us = 150;
  e.turns[0].srtt_status = 30 | (200u << SOCKEYE_TURN_SRTT_BITS);
  e.response_us = 180;
  agg.Handle(e, now);
}

double Round(sockeye::Aggregator& agg, uint64_t& next_id, uint64_t connections, bool frontend) {
  const Clock::time_point now = Clock::now();
  const auto start = Clock::now();
  for (uint64_t i = 0; i < connections; ++i) Connection(agg, next_id++, frontend, now);
  const auto took = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
  return took / static_cast<double>(connections);
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t connections = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  if (connections == 0 || rounds <= 0) {
    std::fprintf(stderr, "usage: aggregator_cost [CONNECTIONS>0] [ROUNDS>0]\n");
    return 2;
  }
  std::printf(
      "# aggregator_cost: ns per short connection (CONNECTED + CLOSED with one turn) in "
      "Aggregator::Handle(), %llu connections per round\n",
      static_cast<unsigned long long>(connections));
  sockeye::Aggregator agg(sockeye::AggregatorOptions{});
  sockeye::Endpoint listener;
  listener.addr[10] = listener.addr[11] = 0xff;
  listener.addr[12] = 127;
  listener.addr[15] = 40;
  listener.port = 8000;
  agg.SetListeners({listener});
  uint64_t next_id = 1;
  Round(agg, next_id, connections / 10 + 1, false);  // warm up both paths
  Round(agg, next_id, connections / 10 + 1, true);
  std::vector<double> backend, frontend;
  std::printf("round  backend_ns  frontend_ns\n");
  for (int r = 0; r < rounds; ++r) {
    backend.push_back(Round(agg, next_id, connections, false));
    frontend.push_back(Round(agg, next_id, connections, true));
    std::printf("%5d  %10.1f  %11.1f\n", r + 1, backend.back(), frontend.back());
  }
  std::sort(backend.begin(), backend.end());
  std::sort(frontend.begin(), frontend.end());
  std::printf("median %10.1f  %11.1f  (connections remembered at the end: %zu)\n",
              backend[backend.size() / 2], frontend[frontend.size() / 2],
              agg.open_connection_count());
  return 0;
}
