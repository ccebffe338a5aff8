/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Request/response turns: a turn starts at the first send after a receive
 * phase (or the first send on the connection) and ends at its first
 * response byte. Completed turns wait in struct conn_hot and go to the
 * agent in batches (SOCKEYE_EV_TURN) or with the next record (emit()).
 */
#ifndef SOCKEYE_TURNS_BPF_H
#define SOCKEYE_TURNS_BPF_H

#include "maps.bpf.h"
#include "settings.bpf.h"

static __always_inline __u64 turns_pending(const struct conn_hot *h)
{
	return READ_ONCE_U64(h->turns_head) - READ_ONCE_U64(h->turns_flushed);
}

/*
 * Moves the waiting turns into a record. The copy is taken first and
 * claimed after: if the compare-and-swap finds turns_flushed moved, another
 * CPU (the sweep, or the receive hook while the sweep runs) took them first and the
 * copy, which may hold slots being reused, is dropped. Slots are reused only
 * after turns_flushed passed them, so a successful claim means the copy was
 * intact. Stores to a slot are ordered before the turns_head store that
 * publishes it by x86-64's store ordering (the compiler barrier in
 * record_turn() keeps clang from reordering them).
 */
static __always_inline void take_turns(struct conn_hot *h, struct sockeye_event *e)
{
	__u64 flushed = READ_ONCE_U64(h->turns_flushed);
	__u64 count = READ_ONCE_U64(h->turns_head) - flushed;

	e->turn_count = 0;
	if (count == 0)
		return;
	if (count > SOCKEYE_TURN_BATCH)
		count = SOCKEYE_TURN_BATCH;
	for (__u32 i = 0; i < SOCKEYE_TURN_BATCH; i++) {
		if (i >= count)
			break;
		e->turns[i] = h->turns[(flushed + i) & (SOCKEYE_TURN_BATCH - 1)];
	}
	if (__sync_val_compare_and_swap(&h->turns_flushed, flushed, flushed + count) == flushed)
		e->turn_count = (__u32)count;
}

/*
 * When the request went out, without a clock read of our own: before it
 * transmits, tcp_write_xmit() calls tcp_mstamp_refresh(), which stores
 * ktime_get_ns() (the clock bpf_ktime_get_ns() reads) in tcp_clock_cache
 * ("tcp: switch tcp and sch_fq to new earliest departure time model",
 * Linux 4.20). A clock read costs 95-130 ns on some virtual machines
 * (bench/README.md#machines-and-noise).
 */
static __always_inline __u64 last_transmit_ns(const struct tcp_sock *tp)
{
	if (bpf_core_field_exists(tp->tcp_clock_cache))
		return tp->tcp_clock_cache;
	return bpf_ktime_get_ns();
}

/* A response's duration, request start to its last payload byte, in us:
 * at least 1, so that 0 can mean none. */
static __always_inline __u32 response_duration_us(const struct conn_hot *h)
{
	__u64 ns = h->last_rx_ns > h->turn_start_ns ? h->last_rx_ns - h->turn_start_ns : 0;

	if (ns >= 0xffffffffULL * 1000)
		return 0xffffffffU;
	return ns < 1000 ? 1 : (__u32)((ns + 500) / 1000);
}

/* The response being received is complete: its next request started, or
 * its connection closed. Its duration, once, or 0. */
static __always_inline __u32 finish_response(struct conn_hot *h)
{
	if (!h->response_open)
		return 0;
	h->response_open = 0;
	return response_duration_us(h);
}

/* For a record (a close, or a sweep that holds the socket lock): a
 * response completed and not yet reported, the previous request's or the
 * current one's when `finish_current`. */
static __always_inline __u32 take_response(struct conn_hot *h, bool finish_current)
{
	__u32 us = h->prev_response_us;

	if (us) {
		h->prev_response_us = 0;
		return us;
	}
	return finish_current ? finish_response(h) : 0;
}

/* A new turn: the previous response ended before this request (HTTP/1.x
 * without pipelining answers one request at a time). */
static __always_inline void start_turn(struct conn_hot *h, __u64 when)
{
	__u32 previous = finish_response(h);

	if (previous)
		h->prev_response_us = previous;
	h->turn_start_ns = when;
	h->phase = PHASE_AWAITING_RESPONSE;
	/* Plain add: an atomic would not make the rare concurrent start by the
	 * send hook and tcp_probe exact either, and costs a locked op. */
	h->requests += 1;
}

/* Called from every hook that sees a tracked, open socket: data queued
 * since we last looked starts a turn unless one is already waiting. The
 * turn counts as a request at once, so request totals never depend on a
 * response arriving. */
static __always_inline void note_send_progress(const struct tcp_sock *tp, struct conn_hot *h)
{
	__u32 write_seq;

	/* A frontend connection's sends are its responses. */
	if (h->tx_final || h->frontend)
		return;
	write_seq = tp->write_seq;
	if (write_seq == h->seen_write_seq)
		return;
	if (h->phase != PHASE_AWAITING_RESPONSE)
		h->request_seq = h->seen_write_seq;
	h->seen_write_seq = write_seq;
	if (h->phase == PHASE_AWAITING_RESPONSE)
		return;
	start_turn(h, last_transmit_ns(tp));
}

/* A send is starting now (fentry/kprobe on tcp_sendmsg, before any data is
 * queued): same turn rule as note_send_progress(), timed before transmit. */
static __always_inline void note_send_start(struct conn_hot *h, __u64 when)
{
	if (h->tx_final || h->frontend || h->phase == PHASE_AWAITING_RESPONSE)
		return;
	start_turn(h, when);
}

/*
 * A frontend connection (accepted from a client) turns the other way: a
 * request is client data arriving after a response began (or the first
 * data), timed at its arrival; its response starts at the first byte the
 * proxy sends after it, which the egress program sees
 * (bpf/http_status.bpf.c). request_seq is where that byte will be.
 */
static __always_inline void frontend_request_started(const struct tcp_sock *tp,
						     struct conn_hot *h, __u64 now)
{
	h->turn_start_ns = now;
	h->request_seq = tp->write_seq;
	h->phase = PHASE_AWAITING_RESPONSE;
	h->requests += 1;
}

/* Client data starts a request after a response began, or, where no egress
 * program reports responses, once the proxy wrote past the last request's
 * request_seq (settings.bpf.h). */
static __always_inline bool frontend_request_is_new(const struct tcp_sock *tp,
						    const struct conn_hot *h)
{
	if (h->phase != PHASE_AWAITING_RESPONSE)
		return true;
	return !frontend_responses_read && (__s32)(tp->write_seq - h->request_seq) > 0;
}

static __always_inline void send_marks_add(const void *sk)
{
	__u64 key = (__u64)(unsigned long)sk;
	struct send_mark none = {};

	if (send_marks_enabled() && bpf_map_update_elem(&send_marks, &key, &none, BPF_ANY))
		count_kernel(SOCKEYE_KC_SEND_MARKS_FULL);
}

static __always_inline void send_marks_remove(const void *sk)
{
	__u64 key = (__u64)(unsigned long)sk;

	if (send_marks_enabled())
		bpf_map_delete_elem(&send_marks, &key);
}

static __always_inline void consume_send_mark(const void *sk, struct conn_hot *h)
{
	__u64 key = (__u64)(unsigned long)sk;
	struct send_mark *mark;
	__u64 when;

	if (!send_marks_enabled())
		return;
	mark = bpf_map_lookup_elem(&send_marks, &key);
	if (!mark || !mark->send_start_ns)
		return;
	when = mark->send_start_ns;
	mark->send_start_ns = 0;
	note_send_start(h, when);
}

/*
 * A full batch of turns from the receive hook (sk_data_ready, its fentry
 * twin on sock_def_readable, or tcp_probe): conn_id and the turns, nothing
 * else (SOCKEYE_EV_TURN). Reaching the socket storage and reading the totals
 * for every batch cost tcp_probe ~35 ns per followed segment
 * (bench/results/hook_cost_lean_batches_2026-11-23.txt); the totals reach
 * the agent with the next sweep or state change instead. A copy that lost the compare-and-swap in
 * take_turns() carries nothing and is discarded.
 */
static __always_inline void emit_turns(struct conn_hot *h)
{
	struct sockeye_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count_kernel(SOCKEYE_KC_RINGBUF_FULL + SOCKEYE_EV_TURN);
		return;
	}
	e->kind = SOCKEYE_EV_TURN;
	e->conn_id = h->conn_id;
	take_turns(h, e);
	if (!e->turn_count) {
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		return;
	}
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > ringbuf_wakeup_bytes()
				      ? BPF_RB_FORCE_WAKEUP
				      : BPF_RB_NO_WAKEUP);
}

/* Appends a completed turn; a full batch goes out at once. */
static __always_inline void record_turn(const struct tcp_sock *tp, struct conn_hot *h,
					__u64 ttfb_ns)
{
	__u64 head = h->turns_head;
	__u64 flushed = READ_ONCE_U64(h->turns_flushed);
	struct sockeye_turn *slot;
	__u32 srtt_us;

	if (head - flushed >= SOCKEYE_TURN_BATCH) {
		/* The last batch record found the ring buffer full. Try again; if
		 * it is still full, give up the oldest turn for the new one. */
		emit_turns(h);
		flushed = READ_ONCE_U64(h->turns_flushed);
		if (head - flushed >= SOCKEYE_TURN_BATCH &&
		    __sync_val_compare_and_swap(&h->turns_flushed, flushed, flushed + 1) == flushed)
			count_kernel(SOCKEYE_KC_TURNS_LOST);
	}
	slot = &h->turns[head & (SOCKEYE_TURN_BATCH - 1)];
	slot->ttfb_us = ttfb_ns >= 0xffffffffULL * 1000 ? 0xffffffffU : (__u32)((ttfb_ns + 500) / 1000);
	srtt_us = tp->srtt_us >> 3; /* stored <<3 by tcp_rtt_estimator() */
	if (srtt_us > SOCKEYE_TURN_SRTT_MAX)
		srtt_us = SOCKEYE_TURN_SRTT_MAX;
	slot->srtt_status = srtt_us | ((__u32)(h->status & 0x3ff) << SOCKEYE_TURN_SRTT_BITS);
	slot->prev_response_us = h->prev_response_us;
	h->prev_response_us = 0;
	h->status = SOCKEYE_STATUS_NONE;
	asm volatile("" ::: "memory");
	h->turns_head = head + 1;
	if (head + 1 - READ_ONCE_U64(h->turns_flushed) >= SOCKEYE_TURN_BATCH)
		emit_turns(h);
}

/* The first byte of the waiting turn's response arrived at `now`. */
static __always_inline void response_started(const struct tcp_sock *tp, struct conn_hot *h,
					     __u64 now)
{
	h->phase = PHASE_RECEIVING;
	record_turn(tp, h, now > h->turn_start_ns ? now - h->turn_start_ns : 0);
	h->response_open = 1;
	h->last_rx_ns = now;
}

/* tcp_probe: a segment with payload. The clock is read only for a followed
 * connection's data while a response is open (the fallback hook's cost:
 * tcp_clock_cache is refreshed only after tcp_probe fires). */
static __always_inline void note_response_bytes(const struct tcp_sock *tp, struct conn_hot *h)
{
	if (h->phase == PHASE_AWAITING_RESPONSE) {
		if (!h->status_hold)
			response_started(tp, h, bpf_ktime_get_ns());
	} else if (h->response_open) {
		h->last_rx_ns = bpf_ktime_get_ns();
	}
}

#endif /* SOCKEYE_TURNS_BPF_H */
