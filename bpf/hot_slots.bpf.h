/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Hot slots: where an open connection's struct conn_hot lives (the
 * hot_slots map, maps.bpf.h), claimed when it opens and given back when
 * its socket is destroyed.
 */
#ifndef SOCKEYE_HOT_SLOTS_BPF_H
#define SOCKEYE_HOT_SLOTS_BPF_H

#include "maps.bpf.h"
#include "settings.bpf.h"

/* The receive hook's way in, without the socket storage: the slot the socket's
 * cookie maps to, if the socket owns it. The cookie is read directly from
 * skc_cookie (set once, by bpf_get_socket_cookie() in claim_hot_slot(), and
 * never changed); a socket without one owns no slot. */
static __always_inline struct conn_hot *owned_hot_slot(__u64 cookie)
{
	struct conn_hot *h;
	__u32 idx;

	if (!hot_slots_enabled() || !cookie)
		return NULL;
	idx = cookie & hot_slot_mask();
	h = bpf_map_lookup_elem(&hot_slots, &idx);
	if (h && READ_ONCE_U64(h->owner) == cookie)
		return h;
	return NULL;
}

/* Where this connection's hot state is now: the slot its cookie owns, if
 * any (cookies are never reused, so a slot that changed hands is never
 * mistaken for ours), else its storage. */
static __always_inline struct conn_hot *conn_hot(struct conn *c)
{
	struct conn_hot *h = owned_hot_slot(c->cookie);

	return h ? h : &c->hot;
}

/* Called under the socket lock (state change, adoption walk), before any
 * hot field is set. The slot keeps its turn counters (see struct
 * conn_hot); everything else starts afresh. */
static __always_inline struct conn_hot *claim_hot_slot(struct sock *sk, struct conn *c)
{
	__u64 cookie = bpf_get_socket_cookie(sk);
	__u32 idx = cookie & hot_slot_mask();
	struct conn_hot *h;

	c->cookie = cookie;
	c->hot.owner = cookie;
	if (!hot_slots_enabled())
		return &c->hot;
	h = bpf_map_lookup_elem(&hot_slots, &idx);
	if (!h || __sync_val_compare_and_swap(&h->owner, 0, cookie) != 0) {
		count_kernel(SOCKEYE_KC_HOT_SLOT_TAKEN);
		return &c->hot;
	}
	/* A previous owner's state; conn_mark_open() sets the rest. */
	h->turn_start_ns = 0;
	h->requests = 0;
	h->tx_final = 0;
	return h;
}

/*
 * Hands the slot back (socket destroyed, or connecting again): the hot
 * state moves into the storage first, so whoever still reads this
 * connection afterwards (the sweep, until the storage is freed) finds it
 * there, then the slot is freed. Turns still waiting in the slot are
 * claimed by compare-and-swap like any record would: if that wins, they
 * are lost (the record that should have carried them found the ring
 * buffer full) and counted.
 */
static __always_inline void release_hot_slot(struct conn *c)
{
	struct conn_hot *h = owned_hot_slot(c->cookie);
	__u64 flushed, head;

	if (!h)
		return;
	c->hot.turn_start_ns = h->turn_start_ns;
	c->hot.seen_write_seq = h->seen_write_seq;
	c->hot.seen_rcv_nxt = h->seen_rcv_nxt;
	c->hot.request_seq = h->request_seq;
	c->hot.requests = h->requests;
	c->hot.phase = h->phase;
	c->hot.tx_final = h->tx_final;
	c->hot.response_open = h->response_open;
	c->hot.status_hold = h->status_hold;
	c->hot.status = h->status;
	c->hot.http = h->http;
	c->hot.status_interim = h->status_interim;
	c->hot.status_write_seq = h->status_write_seq;
	c->hot.status_seq = h->status_seq;
	c->hot.prev_response_us = h->prev_response_us;
	c->hot.frontend = h->frontend;
	c->hot.last_rx_ns = h->last_rx_ns;
	c->hot.turns_head = 0;
	c->hot.turns_flushed = 0;
	flushed = READ_ONCE_U64(h->turns_flushed);
	head = READ_ONCE_U64(h->turns_head);
	if (head != flushed &&
	    __sync_val_compare_and_swap(&h->turns_flushed, flushed, head) == flushed)
		count_kernel_by(SOCKEYE_KC_TURNS_LOST, head - flushed);
	asm volatile("" ::: "memory");
	*(volatile __u64 *)&h->owner = 0;
}

/* Start following an open socket from its current sequence numbers. */
static __always_inline struct conn_hot *conn_mark_open(struct sock *sk, const struct tcp_sock *tp,
						       struct conn *c)
{
	struct conn_hot *h = claim_hot_slot(sk, c);

	c->hot.conn_id = c->conn_id; /* kept there when a slot is given back */
	h->conn_id = c->conn_id;
	c->base_write_seq = tp->write_seq;
	c->base_copied_seq = tp->copied_seq;
	h->seen_write_seq = c->base_write_seq;
	h->seen_rcv_nxt = tp->rcv_nxt;
	c->last_sent32 = 0;
	c->last_received32 = 0;
	c->sent_high = 0;
	c->received_high = 0;
	h->phase = PHASE_IDLE;
	/* No request is outstanding as far as we know: the status program
	 * waits for the next one (an adopted connection may be mid-response). */
	h->status_write_seq = c->base_write_seq;
	h->response_open = 0;
	h->status_hold = 0;
	h->status = SOCKEYE_STATUS_NONE;
	h->http = HTTP_UNKNOWN;
	h->status_interim = 0;
	h->prev_response_us = 0;
	h->frontend = c->frontend;
	c->lifecycle = CONN_OPEN;
	c->opened = 1;
	return h;
}

/*
 * The same for a connection whose ESTABLISHED transition was missed (a run
 * skipped in both of the state hook's programs), found open at a later
 * transition. Its bytes still count from the start: snd_una and rcv_nxt only
 * ever advance together with bytes_acked and bytes_received
 * (tcp_snd_una_update(), tcp_rcv_nxt_update()), and bytes_acked includes the
 * SYN, so these are the bases conn_mark_open() would have read at
 * ESTABLISHED. Requests and turns before now are not counted.
 */
static __always_inline struct conn_hot *conn_mark_open_late(struct sock *sk,
							    const struct tcp_sock *tp,
							    struct conn *c)
{
	struct conn_hot *h = conn_mark_open(sk, tp, c);

	c->base_write_seq = tp->snd_una - (__u32)tp->bytes_acked + 1;
	c->base_copied_seq = tp->rcv_nxt - (__u32)tp->bytes_received;
	return h;
}

#endif /* SOCKEYE_HOT_SLOTS_BPF_H */
