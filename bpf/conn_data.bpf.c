// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Data hooks on followed connections: they only mark request/response
 * turns; byte totals come from sequence numbers (read_totals()). Every
 * hook returns at once for sockets without a struct conn.
 */
#include "sockeye.bpf.h"

/* After sock_sendmsg() (Linux 6.3+): data was queued, maybe a new turn. */
SEC("tp_btf/sock_send_length")
int BPF_PROG(on_sock_send_length, struct sock *sk, int ret, int flags)
{
	struct tcp_sock *tp;
	struct conn *c;

	if (ret <= 0)
		return 0;
	c = conn_lookup(sk);
	if (!c || c->lifecycle != CONN_OPEN)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp)
		note_send_progress(tp, conn_hot(c));
	return 0;
}

/* tcp:tcp_probe fires at the top of tcp_rcv_established() for every
 * segment on an established socket: the first segment carrying payload
 * after a request is the response's first byte, timed at arrival rather
 * than when the application gets round to reading it. Send progress is
 * checked first: without a send hook (the default) this is where a request
 * is noticed, and with sock_send_length the response can still arrive, on
 * loopback, before the sender's hook fires. */
static __always_inline void on_segment(struct sock *sk, const struct sk_buff *skb,
				       struct conn_hot *h)
{
	struct tcp_sock *tp;

	/* A frontend connection needs its tcp_sock only for a request's first
	 * data: its pure ACKs and the rest of a request leave before the
	 * helper call. */
	if (h->frontend) {
		if (!skb_tcp_payload_len(skb) ||
		    (h->phase == PHASE_AWAITING_RESPONSE && frontend_responses_read))
			return;
		tp = bpf_skc_to_tcp_sock(sk);
		if (tp && frontend_request_is_new(tp, h))
			frontend_request_started(tp, h, bpf_ktime_get_ns());
		return;
	}
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return;
	consume_send_mark(sk, h);
	note_send_progress(tp, h);
	if (skb_tcp_payload_len(skb) > 0)
		note_response_bytes(tp, h);
}

/* Sockets without socket storage (nearly all) leave after one load, as
 * in conn_lookup(): sk_bpf_storage sits on a line the receive path has
 * already touched, skc_cookie (IPv4) often not, which cost unfollowed
 * segments ~10 ns more when the cookie was tested first
 * (bench/results/hook_cost_hot_slots_vs_storage_2026-11-23.txt).
 * A socket that owns a hot slot is an open connection: slots are claimed
 * when a connection opens, and tcp_probe fires only in ESTABLISHED. Such a
 * connection's socket storage is not reached at all: a batch of turns
 * carries the conn_id kept in the slot (emit_turns()). */
SEC("tp_btf/tcp_probe")
int BPF_PROG(on_tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	struct conn_hot *h;
	struct conn *c;

	if (bpf_core_field_exists(sk->sk_bpf_storage) && !sk->sk_bpf_storage)
		return 0;
	h = owned_hot_slot((__u64)sk->__sk_common.skc_cookie.counter);
	if (h) {
		on_segment(sk, skb, h);
		return 0;
	}
	c = conn_lookup(sk);
	if (!c || c->lifecycle != CONN_OPEN)
		return 0;
	on_segment(sk, skb, &c->hot);
	return 0;
}

/*
 * sock:sk_data_ready fires when a received segment's payload (or FIN) has
 * been queued for the application, at the end of the kernel's processing of
 * that segment: its ACK has been taken (tcp_ack()) and tcp_clock_cache
 * refreshed. So the response's first byte is timed without a clock read of
 * our own: it arrived at tcp_clock_cache, and the request left at
 * tp->rack.mstamp, the departure time (us) of the newest segment the peer
 * has acknowledged ("tcp: RACK loss detection", Linux 4.4; in us since 4.13)
 * -- the request's last segment, which the response acknowledges.
 * It fires for data and FINs only (not for pure ACKs, unlike tcp_probe) and
 * the lines it reads were just written by the kernel. A data segment that
 * arrives before the peer acknowledged any of the request was sent before
 * the peer had it: not a response. (A response that comes while the rest
 * of a large request is still unacknowledged -- an early error during an
 * upload -- is one, timed from the newest acknowledged piece.)
 */
/* A frontend connection: client data after a response began (or the first
 * data) is a new request, arrived at tcp_clock_cache. */
static __always_inline void frontend_data_ready(const struct sock *sk, const struct tcp_sock *tp,
						struct conn_hot *h)
{
	__u32 rcv_nxt = tp->rcv_nxt;
	__u32 arrived = rcv_nxt - h->seen_rcv_nxt;

	h->seen_rcv_nxt = rcv_nxt;
	if (arrived &&
	    (sk->__sk_common.skc_flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))))
		arrived -= 1; /* the FIN's sequence number */
	if (arrived && frontend_request_is_new(tp, h))
		frontend_request_started(tp, h, last_transmit_ns(tp));
}

static __always_inline void on_data_ready(const struct sock *sk, const struct tcp_sock *tp,
					  struct conn_hot *h)
{
	__u32 rcv_nxt = tp->rcv_nxt;
	__u32 arrived = rcv_nxt - h->seen_rcv_nxt;
	__u64 sent_us, now_ns;

	h->seen_rcv_nxt = rcv_nxt;
	/* Counts a request whose data moved write_seq; the turn_start_ns it
	 * stamps is replaced below by the request's departure. */
	note_send_progress(tp, h);
	if (arrived &&
	    (sk->__sk_common.skc_flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))))
		arrived -= 1; /* the FIN's sequence number */
	if (h->phase != PHASE_AWAITING_RESPONSE) {
		/* More of the response: where it ends so far. */
		if (arrived && h->response_open)
			h->last_rx_ns = tp->tcp_clock_cache;
		return;
	}
	if (!arrived || (__s32)(tp->snd_una - h->request_seq) <= 0)
		return;
	/* An interim (1xx) response: the turn ends at the final one. */
	if (h->status_hold)
		return;
	sent_us = tp->rack.mstamp;
	now_ns = tp->tcp_clock_cache;
	h->turn_start_ns = sent_us * 1000;
	response_started(tp, h, now_ns);
}

static __always_inline void data_ready(struct sock *sk)
{
	struct tcp_sock *tp;
	struct conn_hot *h;
	struct conn *c;

	if (bpf_core_field_exists(sk->sk_bpf_storage) && !sk->sk_bpf_storage)
		return;
	h = owned_hot_slot((__u64)sk->__sk_common.skc_cookie.counter);
	if (!h) {
		c = conn_lookup(sk);
		if (!c || c->lifecycle != CONN_OPEN)
			return;
		h = &c->hot;
	}
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return;
	if (h->frontend)
		frontend_data_ready(sk, tp, h);
	else
		on_data_ready(sk, tp, h);
}

SEC("tp_btf/sk_data_ready")
int BPF_PROG(on_sk_data_ready, struct sock *sk)
{
	data_ready(sk);
	return 0;
}

/*
 * Kernels without sock:sk_data_ready (added in 6.3) where fentry is allowed:
 * the same at the entry of sock_def_readable(), the socket's default
 * data-ready callback, in which the tracepoint fires from 6.3 on. TCP's
 * receive path calls it through sk->sk_data_ready (tcp_data_ready()) for
 * queued data and FINs, after tcp_ack() and tcp_mstamp_refresh(). Being
 * called only through that pointer, it cannot be inlined, which
 * tcp_data_ready() itself is in some builds (an fentry program there would
 * load and never fire). In Debian 12's 6.1 it fired 18 times for traffic of
 * 16 data segments, a FIN and an accept (tests/vm/RESULTS-feature-probe.md).
 * Unlike tcp_probe it runs neither for pure ACKs nor with a clock read.
 */
SEC("fentry/sock_def_readable")
int BPF_PROG(on_sock_def_readable_fentry, struct sock *sk)
{
	data_ready(sk);
	return 0;
}

/*
 * Kernels before 6.3 have no sock_send_length. There the send hook is
 * fentry, or failing that a kprobe, on tcp_sendmsg's entry: a send with
 * size > 0 is starting. The agent switches off whichever is not used.
 * (splice/sendfile on those kernels go through tcp_sendpage instead; their
 * turns start at the next received segment via note_send_progress().)
 */
SEC("fentry/tcp_sendmsg")
int BPF_PROG(on_tcp_sendmsg_fentry, struct sock *sk, struct msghdr *msg, size_t size)
{
	struct conn *c;

	if (!size)
		return 0;
	c = conn_lookup(sk);
	if (!c || c->lifecycle != CONN_OPEN)
		return 0;
	note_send_start(conn_hot(c), bpf_ktime_get_ns());
	return 0;
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(on_tcp_sendmsg_kprobe, struct sock *sk, struct msghdr *msg, size_t size)
{
	__u64 key = (__u64)(unsigned long)sk;
	struct send_mark *mark;

	if (!size)
		return 0;
	mark = bpf_map_lookup_elem(&send_marks, &key);
	if (mark && !mark->send_start_ns)
		mark->send_start_ns = bpf_ktime_get_ns();
	return 0;
}
