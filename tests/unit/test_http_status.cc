// The HTTP/1.x status line parser the kernel's status program runs
// (bpf/http_status.h), and what the aggregator makes of the statuses,
// response durations and unanswered requests the kernel reports.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "agent/aggregator.h"
#include "http_status.h"
#include "tests/unit/aggregator_test_util.h"

namespace sockeye {
namespace {

using aggregator_test_util::Clock;
using aggregator_test_util::Event;
using aggregator_test_util::Scrape;
using aggregator_test_util::SmallOptions;
using aggregator_test_util::V4;

// The parser sees exactly SOCKEYE_STATUS_LINE_LEN bytes; shorter input is
// padded with zero bytes, as a segment's end would never be read.
int Parse(const std::string& text) {
  unsigned char line[SOCKEYE_STATUS_LINE_LEN] = {};
  std::memcpy(line, text.data(), std::min(text.size(), sizeof(line)));
  return sockeye_http_status(line);
}

TEST(HttpStatusLine, EveryClass) {
  EXPECT_EQ(Parse("HTTP/1.1 100 Continue"), 100);
  EXPECT_EQ(Parse("HTTP/1.1 101 Switching Protocols"), 101);
  EXPECT_EQ(Parse("HTTP/1.1 200 OK"), 200);
  EXPECT_EQ(Parse("HTTP/1.1 204 No Content"), 204);
  EXPECT_EQ(Parse("HTTP/1.1 301 Moved Permanently"), 301);
  EXPECT_EQ(Parse("HTTP/1.1 404 Not Found"), 404);
  EXPECT_EQ(Parse("HTTP/1.1 503 Service Unavailable"), 503);
  EXPECT_EQ(Parse("HTTP/1.1 999 "), 999);
}

TEST(HttpStatusLine, HttpOneZeroAndNoReasonPhrase) {
  EXPECT_EQ(Parse("HTTP/1.0 200 OK"), 200);
  EXPECT_EQ(Parse("HTTP/1.1 200\r\n"), 200);
}

TEST(HttpStatusLine, GarbageAndOtherProtocols) {
  EXPECT_EQ(Parse("http/1.1 200 OK"), -1);  // the name is case-sensitive (RFC 9112)
  EXPECT_EQ(Parse("HTTP/2 200 OK"), -1);
  EXPECT_EQ(Parse("HTTP/1.1 20 OK"), -1);
  EXPECT_EQ(Parse("HTTP/1.1 099 "), -1);
  EXPECT_EQ(Parse("HTTP/1.1  200"), -1);
  EXPECT_EQ(Parse("HTTP/1.x 200 "), -1);
  EXPECT_EQ(Parse("+OK\r\n"), -1);                      // Redis
  EXPECT_EQ(Parse(std::string("\x16\x03\x03\x00\x5a", 5)), -1);  // a TLS record
  // An HTTP/2 server's first frame: SETTINGS, type 4.
  EXPECT_EQ(Parse(std::string("\x00\x00\x12\x04\x00\x00\x00\x00\x00", 9)), -1);
}

TEST(HttpStatusLine, TruncatedLines) {
  EXPECT_EQ(Parse("HTTP/1.1 2"), -1);
  EXPECT_EQ(Parse("HTTP/1.1"), -1);
  EXPECT_EQ(Parse(""), -1);
}

TEST(HttpStatusLine, InterimResponsesAreThoseBeforeAFinalOne) {
  EXPECT_TRUE(sockeye_http_status_is_interim(100));
  EXPECT_TRUE(sockeye_http_status_is_interim(102));
  EXPECT_TRUE(sockeye_http_status_is_interim(103));
  EXPECT_FALSE(sockeye_http_status_is_interim(101));
  EXPECT_FALSE(sockeye_http_status_is_interim(200));
}

TEST(HttpStatusLabel, ClassesExactCodesAndOther) {
  EXPECT_EQ(StatusCodeLabel(SOCKEYE_STATUS_NONE, HttpStatusCodes::kClass), "");
  EXPECT_EQ(StatusCodeLabel(SOCKEYE_STATUS_OTHER, HttpStatusCodes::kClass), "other");
  EXPECT_EQ(StatusCodeLabel(SOCKEYE_STATUS_OTHER, HttpStatusCodes::kExact), "other");
  EXPECT_EQ(StatusCodeLabel(101, HttpStatusCodes::kClass), "1xx");
  EXPECT_EQ(StatusCodeLabel(204, HttpStatusCodes::kClass), "2xx");
  EXPECT_EQ(StatusCodeLabel(503, HttpStatusCodes::kClass), "5xx");
  EXPECT_EQ(StatusCodeLabel(503, HttpStatusCodes::kExact), "503");
  EXPECT_EQ(StatusCodeLabel(600, HttpStatusCodes::kClass), "other");
  EXPECT_EQ(StatusCodeLabel(600, HttpStatusCodes::kExact), "600");
}

sockeye_turn Turn(uint32_t status, uint32_t prev_response_us) {
  sockeye_turn t{};
  t.ttfb_us = 1000;
  t.srtt_status = 50 | (status << SOCKEYE_TURN_SRTT_BITS);
  t.prev_response_us = prev_response_us;
  return t;
}

TEST(AggregatorHttp, StatusesDurationsAndUnansweredRequests) {
  Aggregator agg(SmallOptions());
  const auto now = Clock::now();
  const auto backend = V4(10, 0, 0, 2, 80);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 1, backend), now);
  auto batch = Event(SOCKEYE_EV_TURN, 1, sockeye_endpoint{});
  batch.turn_count = 4;
  batch.turns[0] = Turn(200, 0);         // the connection's first response
  batch.turns[1] = Turn(503, 2'000);     // the first one took 2 ms
  batch.turns[2] = Turn(SOCKEYE_STATUS_OTHER, 3'000);
  batch.turns[3] = Turn(SOCKEYE_STATUS_NONE, 4'000);
  agg.Handle(batch, now);
  auto closed = Event(SOCKEYE_EV_CLOSED, 1, backend);
  closed.closed_by = SOCKEYE_CLOSED_BY_LOCAL;
  closed.flags = SOCKEYE_EVF_CLOSED | SOCKEYE_EVF_UNANSWERED;
  closed.response_us = 5'000;  // the last response, completed by the close
  agg.Handle(closed, now);

  auto m = Scrape(agg);
  const std::string b = "backend=10.0.0.2:80";
  EXPECT_EQ(m["sockeye_backend_responses_total{" + b + ",code=2xx}"], 1);
  EXPECT_EQ(m["sockeye_backend_responses_total{" + b + ",code=5xx}"], 1);
  EXPECT_EQ(m["sockeye_backend_responses_total{" + b + ",code=other}"], 1);
  EXPECT_EQ(m.count("sockeye_backend_responses_total{" + b + ",code=}"), 0u);
  EXPECT_EQ(m["sockeye_backend_response_duration_seconds_count{" + b + "}"], 4);
  EXPECT_NEAR(m["sockeye_backend_response_duration_seconds_sum{" + b + "}"], 0.014, 1e-9);
  EXPECT_EQ(m["sockeye_backend_requests_unanswered_total{" + b + ",closed_by=local}"], 1);
  EXPECT_EQ(m["sockeye_backend_requests_unanswered_total{" + b + ",closed_by=remote}"], 0);
  // The RTT shares its word with the status.
  EXPECT_NEAR(m["sockeye_backend_rtt_seconds_sum{" + b + "}"], 4 * 50e-6, 1e-12);
}

TEST(AggregatorHttp, ExactCodes) {
  AggregatorOptions options = SmallOptions();
  options.status_codes = HttpStatusCodes::kExact;
  Aggregator agg(options);
  const auto now = Clock::now();
  const auto backend = V4(10, 0, 0, 3, 80);
  agg.Handle(Event(SOCKEYE_EV_CONNECTED, 7, backend), now);
  auto batch = Event(SOCKEYE_EV_TURN, 7, sockeye_endpoint{});
  batch.turn_count = 3;
  batch.turns[0] = Turn(404, 0);
  batch.turns[1] = Turn(404, 10);
  batch.turns[2] = Turn(502, 10);
  agg.Handle(batch, now);
  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_responses_total{backend=10.0.0.3:80,code=404}"], 2);
  EXPECT_EQ(m["sockeye_backend_responses_total{backend=10.0.0.3:80,code=502}"], 1);
}

// A response completes once: by the close, or by a sweep that holds the
// socket lock. Other record kinds never carry one (the field is not read).
TEST(AggregatorHttp, OnlyClosesAndSweepsCompleteAResponse) {
  Aggregator agg(SmallOptions());
  const auto now = Clock::now();
  const auto backend = V4(10, 0, 0, 4, 80);
  auto connected = Event(SOCKEYE_EV_CONNECTED, 9, backend);
  connected.response_us = 77;  // not a field of this kind: ignored
  agg.Handle(connected, now);
  auto progress = Event(SOCKEYE_EV_PROGRESS, 9, backend);
  progress.response_us = 1'500;
  agg.Handle(progress, now);
  auto m = Scrape(agg);
  EXPECT_EQ(m["sockeye_backend_response_duration_seconds_count{backend=10.0.0.4:80}"], 1);
  EXPECT_NEAR(m["sockeye_backend_response_duration_seconds_sum{backend=10.0.0.4:80}"], 0.0015,
              1e-12);
}

}  // namespace
}  // namespace sockeye
