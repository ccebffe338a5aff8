// The client side's metric families (label `listener`: the address and port
// the listening socket is bound to), declared once like those of
// agent/metric_descriptors.h, which lists them with the rest.
#pragma once

#include <array>

#include "exporters/metric_model.h"

namespace sockeye::families {

using metrics::MetricDescriptor;
using enum metrics::MetricType;

// ---------------------------------------------------------------------------
// Aggregator: per-listener series of the connections the frontend listeners
// accepted, followed like backend ones with the turns the other way round:
// a request is received, its response sent.

inline constexpr MetricDescriptor kFrontendConnectionsAccepted{
    .name = "sockeye_frontend_connections_accepted_total",
    .type = kCounter,
    .labels = {"listener", "frontend"},
    .help = "Client connections the listener accepted (handshake completed)."};
inline constexpr MetricDescriptor kFrontendConnectionsActive{
    .name = "sockeye_frontend_connections_active",
    .type = kGauge,
    .labels = {"listener", "frontend"},
    .help = "Accepted client connections open now."};
inline constexpr MetricDescriptor kFrontendConnectionsClosed{
    .name = "sockeye_frontend_connections_closed_total",
    .type = kCounter,
    .labels = {"listener", "frontend", "closed_by"},
    .help = "Accepted client connections closed, by the side that closed first."};
inline constexpr MetricDescriptor kFrontendConnectionDuration{
    .name = "sockeye_frontend_connection_duration_seconds",
    .type = kHistogram,
    .labels = {"listener", "frontend"},
    .help = "Lifetime of client connections, accept to close."};
inline constexpr MetricDescriptor kFrontendReceivedBytes{
    .name = "sockeye_frontend_received_bytes_total",
    .type = kCounter,
    .labels = {"listener", "frontend"},
    .help = "Payload bytes received from clients (TCP sequence numbers)."};
inline constexpr MetricDescriptor kFrontendSentBytes{
    .name = "sockeye_frontend_sent_bytes_total",
    .type = kCounter,
    .labels = {"listener", "frontend"},
    .help = "Payload bytes sent to clients (TCP sequence numbers)."};
inline constexpr MetricDescriptor kFrontendRequests{
    .name = "sockeye_frontend_requests_total",
    .type = kCounter,
    .labels = {"listener", "frontend"},
    .help = "Requests from clients: client data after a response began, or the first data."};
inline constexpr MetricDescriptor kFrontendResponses{
    .name = "sockeye_frontend_responses_total",
    .type = kCounter,
    .labels = {"listener", "frontend", "code"},
    .help = "The proxy's final HTTP/1.x responses to clients by status class (or code)."};
inline constexpr MetricDescriptor kFrontendRequestsUnanswered{
    .name = "sockeye_frontend_requests_unanswered_total",
    .type = kCounter,
    .labels = {"listener", "frontend", "closed_by"},
    .help = "Client requests whose connection closed before any byte of a response was sent."};
inline constexpr MetricDescriptor kFrontendResponseTime{
    .name = "sockeye_frontend_response_time_seconds",
    .type = kHistogram,
    .labels = {"listener", "frontend"},
    .help =
        "Request received to the first byte of its response sent: the proxy's latency as "
        "its clients get it, backend included, network excluded."};
inline constexpr MetricDescriptor kFrontendRtt{.name = "sockeye_frontend_rtt_seconds",
                                               .type = kHistogram,
                                               .labels = {"listener", "frontend"},
                                               .help = "Smoothed TCP round-trip time to clients."};
inline constexpr MetricDescriptor kFrontendRetransmits{
    .name = "sockeye_frontend_retransmits_total",
    .type = kCounter,
    .labels = {"listener", "frontend"},
    .help = "TCP segments retransmitted to clients."};
inline constexpr MetricDescriptor kFrontendResetsReceived{
    .name = "sockeye_frontend_resets_received_total",
    .type = kCounter,
    .labels = {"listener", "frontend"},
    .help = "TCP resets received from clients."};
inline constexpr MetricDescriptor kFrontendResetsSent{.name = "sockeye_frontend_resets_sent_total",
                                                      .type = kCounter,
                                                      .labels = {"listener", "frontend"},
                                                      .help = "TCP resets sent to clients."};

// ---------------------------------------------------------------------------
// ListenerCollector: each listener's saturation, read from socket
// diagnostics at each scrape.

inline constexpr MetricDescriptor kFrontendAcceptQueueLength{
    .name = "sockeye_frontend_accept_queue_length",
    .type = kGauge,
    .labels = {"listener"},
    .help = "Connections the listener has completed and the proxy has not accepted yet."};
inline constexpr MetricDescriptor kFrontendAcceptQueueLimit{
    .name = "sockeye_frontend_accept_queue_limit",
    .type = kGauge,
    .labels = {"listener"},
    .help = "The listener's accept queue limit (its listen() backlog, capped by somaxconn)."};
inline constexpr MetricDescriptor kFrontendListenDrops{
    .name = "sockeye_frontend_listen_drops_total",
    .type = kCounter,
    .labels = {"listener"},
    .help =
        "SYNs and completed handshakes the listener dropped because its SYN or accept queue was "
        "full (the kernel's per-socket sk_drops)."};
inline constexpr std::array kListenerFamilies = {
    &kFrontendAcceptQueueLength,
    &kFrontendAcceptQueueLimit,
    &kFrontendListenDrops,
};

}  // namespace sockeye::families
