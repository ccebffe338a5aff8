// The aggregator fed arbitrary ring-buffer records, in any order, between
// sweeps, expiry and scrapes. The input is a list of operations; records
// come either whole from the input's bytes (any kind, any length, any
// totals) or built from a few bytes over a small set of connections and
// backends, so that records meet the same connections and the backend
// limit is reached. The format (Input below) is written down in
// aggregator_seeds.py, which makes the seed corpus. After every scrape it
// checks:
//   - no counter or histogram series went down since the previous scrape
//     (a backend that expired may come back from zero: it is compared only
//     across scrapes it survived, the post-expiry scrape being taken at once);
//   - the backends with series of their own and the distinct addresses folded
//     into the overflow series stay within max_backends;
//   - the active connections of the backends add up to the connections
//     followed;
// and after a full sweep that no connection answered, followed by expiry,
// that nothing is remembered but the connections the sweep cannot see.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "agent/aggregator.h"
#include "exporters/metric_model.h"

namespace {

using sockeye::Aggregator;
using Clock = Aggregator::Clock;

constexpr size_t kMaxBackends = 8;
constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr auto kClosedMemory = std::chrono::seconds(30);

[[noreturn]] void Violation(const char* what, const std::string& detail) {
  std::fprintf(stderr, "property violated: %s\n%s\n", what, detail.c_str());
  std::abort();
}

// One scrape, flattened: every counter and histogram value, per backend
// label ("" for the families without one) in the order the scrape lists
// them, which is the same from one scrape to the next (the pool label is
// left out: a reload may move a backend to another pool, and its counters
// go on); and the agent-wide gauges the checks read.
struct Scrape {
  std::unordered_map<std::string, std::vector<double>> monotonic;
  // Families whose series appear as values are first seen (the responses
  // by status code): by backend and label set; a series never goes away.
  std::map<std::string, double> sparse;
  std::unordered_map<std::string, double> gauges;
  double active_sum = 0;
  size_t backend_series = 0;
};

// The series' owner: a backend, or a frontend listener ("listener=...").
std::string BackendOf(const sockeye::metrics::Labels& labels) {
  for (const auto& label : labels) {
    if (label.name == "backend") return label.value;
    if (label.name == "listener") return "listener=" + label.value;
  }
  return "";
}

Scrape Collect(Aggregator& agg) {
  std::vector<sockeye::metrics::MetricFamily> families;
  agg.Collect(families);
  Scrape scrape;
  for (auto& family : families) {
    sockeye::metrics::Materialize(family);
    using sockeye::metrics::MetricType;
    for (const auto& sample : family.samples) {
      if (family.name == "sockeye_backend_responses_total" ||
          family.name == "sockeye_frontend_responses_total") {
        std::string key;
        for (const auto& label : sample.labels)
          if (label.name != "pool") key += label.name + "=" + label.value + ",";
        scrape.sparse[key] = sample.value;
        continue;
      }
      if (family.type == MetricType::kCounter) {
        scrape.monotonic[BackendOf(sample.labels)].push_back(sample.value);
      } else if (sample.labels.empty()) {
        scrape.gauges[family.name] = sample.value;
      }
      if (family.name == "sockeye_backend_connections_active") {
        scrape.active_sum += sample.value;
        ++scrape.backend_series;
      }
      // Followed connections are backend and frontend ones.
      if (family.name == "sockeye_frontend_connections_active") scrape.active_sum += sample.value;
    }
    for (const auto& histogram : family.histograms) {
      std::vector<double>& values = scrape.monotonic[BackendOf(histogram.labels)];
      values.push_back(static_cast<double>(histogram.count));
      values.push_back(histogram.sum);
      for (uint64_t count : histogram.bucket_counts) values.push_back(static_cast<double>(count));
    }
  }
  return scrape;
}

// What Collect() lists at `index` of `backend`'s values, for the report.
std::string NameOf(Aggregator& agg, const std::string& backend, size_t index) {
  std::vector<sockeye::metrics::MetricFamily> families;
  agg.Collect(families);
  size_t at = 0;
  for (auto& family : families) {
    sockeye::metrics::Materialize(family);
    for (const auto& sample : family.samples) {
      if (family.type != sockeye::metrics::MetricType::kCounter ||
          BackendOf(sample.labels) != backend) {
        continue;
      }
      if (at++ == index) return family.name;
    }
    for (const auto& histogram : family.histograms) {
      if (BackendOf(histogram.labels) != backend) continue;
      const size_t parts = 2 + histogram.bucket_counts.size();
      if (index < at + parts) {
        return family.name + (index == at ? "_count" : index == at + 1 ? "_sum" : "_bucket");
      }
      at += parts;
    }
  }
  return "?";
}

double Gauge(const Scrape& scrape, const char* name) {
  const auto it = scrape.gauges.find(name);
  if (it == scrape.gauges.end()) Violation("gauge missing", name);
  return it->second;
}

void Check(const Scrape& previous, const Scrape& now, Aggregator& agg) {
  for (const auto& [key, value] : previous.sparse) {
    const auto it = now.sparse.find(key);
    // Expiry forgets a backend, with all its series.
    if (it == now.sparse.end()) continue;
    if (it->second < value) Violation("a response counter went down", key);
  }
  for (const auto& [backend, values] : now.monotonic) {
    const auto before = previous.monotonic.find(backend);
    if (before == previous.monotonic.end()) continue;
    if (before->second.size() != values.size()) Violation("series came or went", backend);
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i] < before->second[i]) {
        Violation("a counter went down", NameOf(agg, backend, i) + "{backend=" + backend +
                                             "}: " + std::to_string(before->second[i]) + " -> " +
                                             std::to_string(values[i]));
      }
    }
  }
  const double backends = Gauge(now, "sockeye_backends");
  if (backends > kMaxBackends || Gauge(now, "sockeye_backends_overflow") > kMaxBackends) {
    Violation("more backends than max_backends", std::to_string(backends));
  }
  // Each backend's own series, plus the overflow series.
  if (now.backend_series > kMaxBackends + 1) {
    Violation("more backend series than max_backends + 1", std::to_string(now.backend_series));
  }
  const double followed = Gauge(now, "sockeye_connections_followed");
  if (now.active_sum != followed) {
    Violation("active connections do not add up to those followed",
              std::to_string(now.active_sum) + " != " + std::to_string(followed));
  }
  if (static_cast<double>(agg.open_connection_count()) != followed ||
      static_cast<double>(agg.backend_count()) != backends) {
    Violation("accessors disagree with the scrape", "");
  }
}

// Reads the input front to back; past its end, every read gives zeros.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return offset_ >= size_; }

  uint8_t Byte() { return offset_ < size_ ? data_[offset_++] : 0; }

  // Little-endian, as wide as T.
  template <typename T>
  T Whole() {
    uint64_t value = 0;
    for (size_t i = 0; i < sizeof(T); ++i) value |= uint64_t{Byte()} << (8 * i);
    return static_cast<T>(value);
  }

  // A small value in one byte, or 0xff then any value as wide as T
  // (wrap-around, huge jumps).
  template <typename T>
  T Total() {
    const uint8_t tag = Byte();
    return tag == 0xff ? Whole<T>() : static_cast<T>(tag);
  }

  std::vector<uint8_t> Bytes(size_t n) {
    n = std::min(n, size_ - std::min(offset_, size_));
    std::vector<uint8_t> out(data_ + offset_, data_ + offset_ + n);
    offset_ += n;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t offset_ = 0;
};

sockeye_endpoint SmallEndpoint(uint8_t selector) {
  sockeye_endpoint e{};
  e.addr[10] = 0xff;
  e.addr[11] = 0xff;
  e.addr[12] = 10;
  e.addr[15] = static_cast<uint8_t>(selector & 0x1f);  // 32 addresses for 8 backends
  e.port = (selector & 0x20) ? 443 : 80;
  return e;
}

// A record over a small set of connections (64) and backends (64); kind,
// reason, closed_by and flags are any byte, turn_count any up to one past
// the batch.
sockeye_event SmallRecord(Input& in) {
  sockeye_event e{};
  e.kind = in.Byte();
  e.reason = in.Byte();
  e.closed_by = in.Byte();
  e.flags = in.Byte();
  e.conn_id = in.Byte() & 0x3f;
  e.backend = SmallEndpoint(in.Byte());
  e.srtt_us = in.Total<uint32_t>();
  e.duration_ns = in.Total<uint64_t>();
  e.totals.bytes_sent = in.Total<uint64_t>();
  e.totals.bytes_received = in.Total<uint64_t>();
  e.totals.requests = in.Total<uint32_t>();
  e.totals.retransmits = in.Total<uint32_t>();
  e.totals.resets_sent = in.Total<uint32_t>();
  e.totals.resets_received = in.Total<uint32_t>();
  e.turn_count = in.Byte() % (SOCKEYE_TURN_BATCH + 2);
  for (uint32_t i = 0; i < std::min<uint32_t>(e.turn_count, SOCKEYE_TURN_BATCH); ++i) {
    e.turns[i].ttfb_us = in.Total<uint32_t>();
    e.turns[i].srtt_status = in.Total<uint32_t>();  // any status, any RTT
    e.turns[i].prev_response_us = in.Total<uint32_t>();
  }
  e.response_us = in.Total<uint32_t>();
  return e;
}

// A record of any length, as the ring buffer's reader takes it
// (agent/load_sequence.cc): a short one reaches the aggregator as zeros.
// aggregator_seeds.py writes whole records of this size.
static_assert(sizeof(sockeye_event) == 280);
sockeye_event RawRecord(Input& in) {
  const size_t length = in.Whole<uint16_t>() % (2 * sizeof(sockeye_event) + 1);
  const std::vector<uint8_t> bytes = in.Bytes(length);
  sockeye_event e{};
  if (bytes.size() >= sizeof(e)) std::memcpy(&e, bytes.data(), sizeof(e));
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  sockeye::AggregatorOptions options;
  options.max_backends = kMaxBackends;
  options.backend_idle_timeout = kIdleTimeout;
  options.closed_connection_memory = kClosedMemory;
  Aggregator agg(options);
  Clock::time_point now = Clock::now();
  Scrape last = Collect(agg);
  auto scrape = [&] {
    Scrape next = Collect(agg);
    Check(last, next, agg);
    last = std::move(next);
  };

  while (!in.empty()) {
    // Mostly records: scrapes are what takes the time.
    switch (in.Byte() % 24) {
      default:  // 0-16
        agg.Handle(SmallRecord(in), now);
        break;
      case 17:
        agg.Handle(RawRecord(in), now);
        break;
      case 18:
        now += std::chrono::milliseconds(4 * int64_t{in.Whole<uint16_t>()});
        break;
      case 19:
        // Expiry, then a scrape at once: a backend that expired may
        // come back from zero, but not between two scrapes.
        agg.Maintain(now);
        scrape();
        break;
      case 20: {
        const int step = in.Byte() % 4;
        if (step == 0) agg.BeginFullSweep();
        if (step == 1) agg.EndFullSweep();
        if (step == 2) agg.AbortFullSweep();
        if (step == 3) agg.StartSweepInterval();
        break;
      }
      case 21: {
        std::vector<sockeye::PoolMapping> pools;
        // None, or one pool: 10.0.0.A/24 to /27.
        if (const uint8_t pool = in.Byte(); pool & 0x80) {
          std::string error;
          auto match = sockeye::ParseCidrMatch("10.0.0." + std::to_string(pool & 0x1f) + "/" +
                                                   std::to_string(24 + ((pool >> 5) & 3)),
                                               &error);
          if (match) pools.push_back({"pool", *match});
        }
        agg.SetPools(std::move(pools));
        break;
      }
      case 22:
        scrape();
        break;
      case 23: {
        // A full sweep that reports nothing retires every connection it can
        // see; past the closed-connection memory, only those it cannot see
        // are left.
        agg.BeginFullSweep();
        agg.EndFullSweep();
        now = std::max(now, Clock::now()) + kClosedMemory + std::chrono::seconds(1);
        agg.Maintain(now);
        scrape();
        const double followed = Gauge(last, "sockeye_connections_followed");
        if (followed != Gauge(last, "sockeye_connections_not_swept") ||
            Gauge(last, "sockeye_connections_remembered") != 0) {
          Violation("connections left after a full sweep and expiry", "");
        }
        break;
      }
    }
  }
  scrape();
  return 0;
}
