// Every metric family the agent's own collectors serve, declared once: name,
// type, label names and help text. Why this file is long (~400 lines): it is
// that one list, an entry per family, read as a catalogue; split, it would
// scatter what docs/metrics.md mirrors in one table.
//
// The collectors (Aggregator, ProbesCollector, BuildInfoCollector) build
// their families from these and only fill in the values at each scrape;
// docs/metrics.md lists the same families and a unit test
// (tests/unit/test_metrics_doc.cc) fails when the two differ. The process_*
// families are declared in exporters/process_collector.h,
// sockeye_collector_errors_total in exporters/registry.h, the metrics
// server's own families (sockeye_scrape_duration_seconds,
// sockeye_scrapes_total, sockeye_http_requests_total) in
// exporters/scrape_stats.h.
#pragma once

#include <array>

#include "agent/metric_descriptors_frontend.h"
#include "exporters/metric_model.h"

namespace sockeye::families {

using metrics::MetricDescriptor;
using enum metrics::MetricType;

// ---------------------------------------------------------------------------
// Aggregator: per-backend series. Every series has `backend`, and `pool`
// when a --pool mapping names the backend's pool.

inline constexpr MetricDescriptor kBackendConnectionsEstablished{
    .name = "sockeye_backend_connections_established_total",
    .type = kCounter,
    .labels = {"backend", "pool"},
    .help = "TCP connections to the backend that completed the handshake."};
inline constexpr MetricDescriptor kBackendConnectFailures{
    .name = "sockeye_backend_connect_failures_total",
    .type = kCounter,
    .labels = {"backend", "pool", "reason"},
    .help = "Connection attempts to the backend that failed, by reason."};
inline constexpr MetricDescriptor kBackendConnectionsActive{
    .name = "sockeye_backend_connections_active",
    .type = kGauge,
    .labels = {"backend", "pool"},
    .help = "Open TCP connections to the backend."};
inline constexpr MetricDescriptor kBackendConnectionsClosed{
    .name = "sockeye_backend_connections_closed_total",
    .type = kCounter,
    .labels = {"backend", "pool", "closed_by"},
    .help = "Connections to the backend that closed, by which side closed first."};
inline constexpr MetricDescriptor kBackendConnectDuration{
    .name = "sockeye_backend_connect_duration_seconds",
    .type = kHistogram,
    .labels = {"backend", "pool"},
    .help = "Time from SYN sent to connection established."};
inline constexpr MetricDescriptor kBackendConnectionDuration{
    .name = "sockeye_backend_connection_duration_seconds",
    .type = kHistogram,
    .labels = {"backend", "pool"},
    .help =
        "Lifetime of connections from connect() to close (connections open at agent start are "
        "not observed)."};
inline constexpr MetricDescriptor kBackendSentBytes{
    .name = "sockeye_backend_sent_bytes_total",
    .type = kCounter,
    .labels = {"backend", "pool"},
    .help = "Payload bytes the host sent to the backend."};
inline constexpr MetricDescriptor kBackendReceivedBytes{
    .name = "sockeye_backend_received_bytes_total",
    .type = kCounter,
    .labels = {"backend", "pool"},
    .help = "Payload bytes the host read from the backend."};
inline constexpr MetricDescriptor kBackendRequests{
    .name = "sockeye_backend_requests_total",
    .type = kCounter,
    .labels = {"backend", "pool"},
    .help = "Requests (request/response turns) sent to the backend."};
inline constexpr MetricDescriptor kBackendTimeToFirstByte{
    .name = "sockeye_backend_time_to_first_byte_seconds",
    .type = kHistogram,
    .labels = {"backend", "pool"},
    .help = "Time from the start of a request to the first byte of its response."};
inline constexpr MetricDescriptor kBackendResponses{
    .name = "sockeye_backend_responses_total",
    .type = kCounter,
    .labels = {"backend", "pool", "code"},
    .help =
        "Final HTTP/1.x responses from the backend, by status class (1xx..5xx, other), or by "
        "status code with --http-status-codes exact."};
inline constexpr MetricDescriptor kBackendRequestsUnanswered{
    .name = "sockeye_backend_requests_unanswered_total",
    .type = kCounter,
    .labels = {"backend", "pool", "closed_by"},
    .help =
        "Requests whose connection closed before any byte of a response, by which side closed "
        "first (local: the proxy gave up; remote: the backend hung up)."};
inline constexpr MetricDescriptor kBackendResponseDuration{
    .name = "sockeye_backend_response_duration_seconds",
    .type = kHistogram,
    .labels = {"backend", "pool"},
    .help = "Time from the start of a request to the last byte of its response."};
inline constexpr MetricDescriptor kBackendRequestsPerConnection{
    .name = "sockeye_backend_requests_per_connection",
    .type = kHistogram,
    .labels = {"backend", "pool"},
    .help = "Requests carried by each closed connection."};
inline constexpr MetricDescriptor kBackendRtt{
    .name = "sockeye_backend_rtt_seconds",
    .type = kHistogram,
    .labels = {"backend", "pool"},
    .help = "Smoothed TCP round-trip time, sampled at each response and at close."};
inline constexpr MetricDescriptor kBackendRetransmits{
    .name = "sockeye_backend_retransmits_total",
    .type = kCounter,
    .labels = {"backend", "pool"},
    .help = "TCP segments retransmitted to the backend."};
inline constexpr MetricDescriptor kBackendResetsReceived{
    .name = "sockeye_backend_resets_received_total",
    .type = kCounter,
    .labels = {"backend", "pool"},
    .help = "TCP resets received from the backend."};
inline constexpr MetricDescriptor kBackendResetsSent{.name = "sockeye_backend_resets_sent_total",
                                                     .type = kCounter,
                                                     .labels = {"backend", "pool"},
                                                     .help = "TCP resets sent to the backend."};

// ---------------------------------------------------------------------------
// Aggregator: its own bookkeeping.

inline constexpr MetricDescriptor kEvents{
    .name = "sockeye_events_total",
    .type = kCounter,
    .labels = {"kind"},
    .help = "Kernel records processed by the agent, by kind."};
inline constexpr MetricDescriptor kEventsMalformed{
    .name = "sockeye_events_malformed_total",
    .type = kCounter,
    .help =
        "Kernel records with an unknown kind, or with more turns than a batch holds; "
        "ignored (the turns) or dropped (the record)."};
inline constexpr MetricDescriptor kTurnsUnmatched{
    .name = "sockeye_turns_unmatched_total",
    .type = kCounter,
    .help =
        "Time-to-first-byte samples in batch records of connections the agent does not "
        "know (their opening record found the ring buffer full); not observed."};
inline constexpr MetricDescriptor kTransitionsSeenLate{
    .name = "sockeye_transitions_seen_late_total",
    .type = kCounter,
    .labels = {"transition"},
    .help =
        "Connections whose ESTABLISHED or CLOSE transition the kernel skipped in both of the "
        "state hook's programs (see sockeye_bpf_program_missed_runs_total), counted when a "
        "later transition or the socket's destruction showed it: no connect time or lifetime "
        "sample, and requests before an established one was seen are not counted."};
inline constexpr MetricDescriptor kBackends{
    .name = "sockeye_backends", .type = kGauge, .help = "Backends with their own series."};
inline constexpr MetricDescriptor kBackendsMax{
    .name = "sockeye_backends_max",
    .type = kGauge,
    .help = "Backends that may have their own series (--max-backends)."};
inline constexpr MetricDescriptor kBackendsOverflow{
    .name = "sockeye_backends_overflow",
    .type = kGauge,
    .help =
        "Distinct backend addresses counted in the (overflow) backend series because "
        "--max-backends was reached (capped at --max-backends)."};
inline constexpr MetricDescriptor kBackendOverflowConnections{
    .name = "sockeye_backend_overflow_connections_total",
    .type = kCounter,
    .help = "Connections counted in the (overflow) backend series."};
inline constexpr MetricDescriptor kBackendsExpired{
    .name = "sockeye_backends_expired_total",
    .type = kCounter,
    .help = "Backends forgotten after --backend-idle-timeout without connections."};
inline constexpr MetricDescriptor kConnectionsFollowed{
    .name = "sockeye_connections_followed",
    .type = kGauge,
    .help = "Backend connections the agent follows now."};
inline constexpr MetricDescriptor kConnectionsRemembered{
    .name = "sockeye_connections_remembered",
    .type = kGauge,
    .help =
        "Closed connections the agent still keeps, so that a late record for one (data "
        "read after a reset closed it) is differenced, not counted again; kept for a minute. "
        "A connection the application had already let go of at close is not kept."};
inline constexpr MetricDescriptor kConnectionsNotSwept{
    .name = "sockeye_connections_not_swept",
    .type = kGauge,
    .help =
        "Followed connections in network namespaces the sweep does not walk (the sweep runs "
        "over iter/tcp, which sees only the agent's own): their totals and the last turns of "
        "an idle connection arrive at state changes and at close, not every sweep."};
inline constexpr MetricDescriptor kConnectionsRetired{
    .name = "sockeye_connections_retired_total",
    .type = kCounter,
    .help = "Connections found closed by a full sweep because their close record was lost."};

// The Aggregator's families, in the order a scrape lists them.
inline constexpr std::array kAggregatorFamilies = {
    &kBackendConnectionsEstablished,
    &kBackendConnectFailures,
    &kBackendConnectionsActive,
    &kBackendConnectionsClosed,
    &kBackendConnectDuration,
    &kBackendConnectionDuration,
    &kBackendSentBytes,
    &kBackendReceivedBytes,
    &kBackendRequests,
    &kBackendTimeToFirstByte,
    &kBackendResponses,
    &kBackendRequestsUnanswered,
    &kBackendResponseDuration,
    &kBackendRequestsPerConnection,
    &kBackendRtt,
    &kBackendRetransmits,
    &kBackendResetsReceived,
    &kBackendResetsSent,
    &kFrontendConnectionsAccepted,
    &kFrontendConnectionsActive,
    &kFrontendConnectionsClosed,
    &kFrontendConnectionDuration,
    &kFrontendReceivedBytes,
    &kFrontendSentBytes,
    &kFrontendRequests,
    &kFrontendResponses,
    &kFrontendRequestsUnanswered,
    &kFrontendResponseTime,
    &kFrontendRtt,
    &kFrontendRetransmits,
    &kFrontendResetsReceived,
    &kFrontendResetsSent,
    &kEvents,
    &kEventsMalformed,
    &kTurnsUnmatched,
    &kTransitionsSeenLate,
    &kBackends,
    &kBackendsMax,
    &kBackendsOverflow,
    &kBackendOverflowConnections,
    &kBackendsExpired,
    &kConnectionsFollowed,
    &kConnectionsRemembered,
    &kConnectionsNotSwept,
    &kConnectionsRetired,
};

// ---------------------------------------------------------------------------
// ProbesCollector: the kernel side.

inline constexpr MetricDescriptor kProbeInfo{
    .name = "sockeye_probe_info",
    .type = kGauge,
    .labels = {"hook", "mode", "target"},
    .help =
        "The kernel program attached for each hook and where (target: the "
        "tracepoint, function or iterator; mode off: none, for send that is the "
        "default, for the others the kernel lacks the hook)."};
inline constexpr MetricDescriptor kBpfProgramMissedRuns{
    .name = "sockeye_bpf_program_missed_runs_total",
    .type = kCounter,
    .labels = {"program", "recovered"},
    .help =
        "Runs of each sockeye BPF program that the kernel skipped because the program was "
        "already running on that CPU (an interrupt arriving while it ran in process context; "
        "the kernel's recursion_misses, counted where the kernel counts them). "
        "recovered=\"true\": runs a standby program on the same hook did instead, nothing lost; "
        "recovered=\"false\": runs not redone, many of them for sockets sockeye does not "
        "follow; a followed connection's missed open or close is reported late "
        "(sockeye_transitions_seen_late_total), a missed response loses its "
        "time-to-first-byte sample."};
inline constexpr MetricDescriptor kEventsLost{
    .name = "sockeye_events_lost_total",
    .type = kCounter,
    .labels = {"kind"},
    .help =
        "Kernel records dropped because the ring buffer was full, by kind "
        "(raise --ringbuf-size)."};
inline constexpr MetricDescriptor kConnectionsUnfollowed{
    .name = "sockeye_connections_unfollowed_total",
    .type = kCounter,
    .help = "Connects not followed because socket storage could not be allocated."};
inline constexpr MetricDescriptor kSendMarksFull{
    .name = "sockeye_send_marks_full_total",
    .type = kCounter,
    .help =
        "kprobe mode: followed connections that got no send-mark slot; their "
        "requests are noticed at the next received segment instead."};
inline constexpr MetricDescriptor kTurnsLost{
    .name = "sockeye_turns_lost_total",
    .type = kCounter,
    .help =
        "Completed requests whose time-to-first-byte sample never reached "
        "the agent (its batch record found the ring buffer full)."};
inline constexpr MetricDescriptor kEventsDeferred{
    .name = "sockeye_events_deferred_total",
    .type = kCounter,
    .help =
        "Records the ring buffer had no room for, kept in a kernel map until the agent collected "
        "them (late, not lost)."};
inline constexpr MetricDescriptor kStatusUnread{
    .name = "sockeye_http_status_unread_total",
    .type = kCounter,
    .help =
        "Responses on HTTP/1.x connections whose status could not be read (a first segment "
        "shorter than a status line, or interim headers longer than 128 bytes); their requests "
        "count without a status."};
inline constexpr MetricDescriptor kAdoptionSocketsSkipped{
    .name = "sockeye_adoption_sockets_skipped_total",
    .type = kCounter,
    .help =
        "Sockets of the --process processes found at start-up that could not "
        "be marked for adoption (more than the adoption map holds): "
        "connections open on them before start-up are not followed."};
inline constexpr MetricDescriptor kAdoptionNetworkNamespaces{
    .name = "sockeye_adoption_network_namespaces",
    .type = kGauge,
    .labels = {"result"},
    .help =
        "Network namespaces searched at start-up for connections that were already open (the "
        "agent's own and those of the processes it follows: containers), and those it could not "
        "enter (entering needs CAP_SYS_ADMIN); connections open there before start-up are not "
        "followed."};
inline constexpr MetricDescriptor kHotSlotFallbacks{
    .name = "sockeye_hot_slot_fallbacks_total",
    .type = kCounter,
    .help =
        "Connections that opened while the hot slot their socket cookie maps "
        "to was taken: their per-segment state stays in socket storage, which "
        "costs tcp_probe more per segment. Nothing is lost."};
inline constexpr MetricDescriptor kIteratorRecordsLost{
    .name = "sockeye_iterator_records_lost_total",
    .type = kCounter,
    .help = "Adoption or sweep records the kernel could not write."};
inline constexpr MetricDescriptor kSweeps{
    .name = "sockeye_sweeps_total",
    .type = kCounter,
    .labels = {"result"},
    .help =
        "Sweeps of the live connections by result; a failed one may have "
        "reported part of them, retires nothing, and the next one catches "
        "up (the log says why); one is skipped when no connection open "
        "now was already open at the previous one (their own records "
        "carried everything)."};
inline constexpr MetricDescriptor kSweepDuration{
    .name = "sockeye_sweep_duration_seconds_total",
    .type = kCounter,
    .help =
        "Wall time spent in sweeps. Over iter/tcp (sockeye_probe_info "
        "hook=\"sweep\") it grows with every TCP socket in the agent's "
        "network namespace."};
inline constexpr MetricDescriptor kSweepInterval{
    .name = "sockeye_sweep_interval_seconds",
    .type = kGauge,
    .help =
        "Time from one sweep's start to the next: --sweep-interval, or longer "
        "while sweeps are slow, so that they take at most 0.5 % of one CPU."};
// Served with --bpf-stats only.
inline constexpr MetricDescriptor kBpfProgramRunTime{
    .name = "sockeye_bpf_program_run_time_seconds_total",
    .type = kCounter,
    .labels = {"program"},
    .help = "Kernel time spent in each sockeye BPF program (BPF stats, --bpf-stats)."};
inline constexpr MetricDescriptor kBpfProgramRuns{
    .name = "sockeye_bpf_program_runs_total",
    .type = kCounter,
    .labels = {"program"},
    .help = "Invocations of each sockeye BPF program (BPF stats, --bpf-stats)."};

// The ProbesCollector's families, in the order a scrape lists them.
inline constexpr std::array kProbesFamilies = {
    &kProbeInfo,
    &kBpfProgramMissedRuns,
    &kEventsLost,
    &kConnectionsUnfollowed,
    &kSendMarksFull,
    &kTurnsLost,
    &kEventsDeferred,
    &kStatusUnread,
    &kAdoptionSocketsSkipped,
    &kAdoptionNetworkNamespaces,
    &kHotSlotFallbacks,
    &kIteratorRecordsLost,
    &kSweeps,
    &kSweepDuration,
    &kSweepInterval,
    &kBpfProgramRunTime,
    &kBpfProgramRuns,
};

// ---------------------------------------------------------------------------
// BuildInfoCollector.

inline constexpr MetricDescriptor kBuildInfo{.name = "sockeye_build_info",
                                             .type = kGauge,
                                             .labels = {"version", "revision"},
                                             .help = "Build of the running agent; always 1."};

}  // namespace sockeye::families
