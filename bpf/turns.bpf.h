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

/* Called from every hook that sees a tracked, open socket: data queued
 * since we last looked starts a turn unless one is already waiting. The
 * turn counts as a request at once, so request totals never depend on a
 * response arriving. */
static __always_inline void note_send_progress(const struct tcp_sock *tp, struct conn_hot *h)
{
	__u32 write_seq;

	if (h->tx_final)
		return;
	write_seq = tp->write_seq;
	if (write_seq == h->seen_write_seq)
		return;
	if (h->phase != PHASE_AWAITING_RESPONSE)
		h->request_seq = h->seen_write_seq;
	h->seen_write_seq = write_seq;
	if (h->phase == PHASE_AWAITING_RESPONSE)
		return;
	h->turn_start_ns = last_transmit_ns(tp);
	h->phase = PHASE_AWAITING_RESPONSE;
	/* Plain add: an atomic would not make the rare concurrent start by the
	 * send hook and tcp_probe exact either, and costs a locked op. */
	h->requests += 1;
}

/* A send is starting now (fentry/kprobe on tcp_sendmsg, before any data is
 * queued): same turn rule as note_send_progress(), timed before transmit. */
static __always_inline void note_send_start(struct conn_hot *h, __u64 when)
{
	if (h->tx_final || h->phase == PHASE_AWAITING_RESPONSE)
		return;
	h->turn_start_ns = when;
	h->phase = PHASE_AWAITING_RESPONSE;
	h->requests += 1;
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
	slot->srtt_us = tp->srtt_us >> 3; /* stored <<3 by tcp_rtt_estimator() */
	asm volatile("" ::: "memory");
	h->turns_head = head + 1;
	if (head + 1 - READ_ONCE_U64(h->turns_flushed) >= SOCKEYE_TURN_BATCH)
		emit_turns(h);
}

static __always_inline void note_response_bytes(const struct tcp_sock *tp, struct conn_hot *h)
{
	if (h->phase != PHASE_AWAITING_RESPONSE)
		return;
	h->phase = PHASE_RECEIVING;
	record_turn(tp, h, bpf_ktime_get_ns() - h->turn_start_ns);
}

#endif /* SOCKEYE_TURNS_BPF_H */
