/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A connection's totals, read from the kernel's own TCP state, and the
 * records that carry them to the agent (struct sockeye_event).
 */
#ifndef SOCKEYE_RECORDS_BPF_H
#define SOCKEYE_RECORDS_BPF_H

#include "maps.bpf.h"
#include "settings.bpf.h"
#include "turns.bpf.h"

/*
 * Totals from the kernel's TCP state rather than from syscall return
 * values, so sendfile/splice/io_uring are exact too and MSG_PEEK never
 * counts: write_seq advances when data is queued by any path, copied_seq
 * when the application consumes it (tcp_recvmsg, tcp_read_sock/splice).
 * Two sequence numbers are not payload and are taken out: our FIN (frozen
 * in final_write_seq before tcp_send_fin() adds it) and the peer's FIN once
 * the application has read it (tcp_recvmsg's found_fin_ok advances
 * copied_seq by one; SOCK_DONE is set by tcp_fin()).
 *
 * The 32-bit differences are extended past 4 GiB by watching for wrap.
 * Two CPUs sampling the same socket in the same instant across a 4 GiB
 * boundary could both see the wrap; that window is accepted.
 */
static __always_inline void read_totals(const struct sock *sk, const struct tcp_sock *tp,
					struct conn *c, const struct conn_hot *h,
					struct sockeye_conn_totals *t)
{
	/* Not "tx_final ? c->... : tp->...": clang folds that into one load from
	 * a selected pointer, which the verifier refuses (map value vs kernel
	 * object in the same instruction); the empty asm pins the kernel load. */
	__u32 write_seq = tp->write_seq;
	__u32 retransmits = tp->total_retrans;
	__u32 copied_seq = tp->copied_seq;
	__u32 rcv_nxt = tp->rcv_nxt;
	unsigned long sk_flags = sk->__sk_common.skc_flags;
	__u32 sent32, received32;

	asm volatile("" : "+r"(write_seq));
	asm volatile("" : "+r"(retransmits));
	if (h->tx_final)
		write_seq = c->final_write_seq;

	/* tcp_disconnect() (an abortive close: SO_LINGER 0, as HAProxy closes
	 * server connections) moves the socket to CLOSE and then advances
	 * write_seq by a window and sets copied_seq = rcv_nxt, so sequence
	 * numbers read after it mean nothing. It also clears sk_shutdown,
	 * which every other way into CLOSE leaves set (tcp_done(), tcp_close()):
	 * past the close record, such a socket keeps the totals reported. */
	if (c->close_reported && BPF_CORE_READ_BITFIELD(sk, sk_shutdown) == 0) {
		t->bytes_sent = c->reported_sent;
		t->bytes_received = c->reported_received;
		t->requests = c->reported_requests;
		t->retransmits = c->reported_retransmits;
		t->resets_sent = c->resets_sent;
		t->resets_received = c->resets_received;
		return;
	}

	/* Before ESTABLISHED there is no payload and no base to count from
	 * (tcp_v4_connect() picks the ISN after the SYN_SENT transition). */
	if (!c->opened) {
		__builtin_memset(t, 0, sizeof(*t));
		t->retransmits = retransmits;
		t->resets_sent = c->resets_sent;
		t->resets_received = c->resets_received;
		return;
	}
	if ((sk_flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))) &&
	    copied_seq == rcv_nxt)
		copied_seq -= 1;

	sent32 = write_seq - c->base_write_seq;
	received32 = copied_seq - c->base_copied_seq;
	if (sent32 < c->last_sent32)
		c->sent_high += 1ULL << 32;
	if (received32 < c->last_received32)
		c->received_high += 1ULL << 32;
	c->last_sent32 = sent32;
	c->last_received32 = received32;

	t->bytes_sent = c->sent_high + sent32;
	t->bytes_received = c->received_high + received32;
	t->requests = h->requests;
	t->retransmits = retransmits;
	t->resets_sent = c->resets_sent;
	t->resets_received = c->resets_received;
}

_Static_assert(__builtin_offsetof(struct sockeye_event, turns) == sizeof(struct sockeye_event_head),
	       "struct sockeye_event starts with struct sockeye_event_head");
_Static_assert(__builtin_offsetof(struct sockeye_event, response_us) ==
		       __builtin_offsetof(struct sockeye_event_head, response_us),
	       "struct sockeye_event starts with struct sockeye_event_head");

/* At close: the last request got no byte of a response. A frontend
 * connection's response is seen by the egress program when it is attached;
 * without it, by any byte sent after the request arrived (request_seq). */
static __always_inline bool request_unanswered(const struct tcp_sock *tp, const struct conn *c,
					       const struct conn_hot *h)
{
	__u32 final_seq, write_seq;

	if (h->phase != PHASE_AWAITING_RESPONSE)
		return false;
	if (!h->frontend)
		return true;
	/* Both read first: a load through either pointer, chosen by a
	 * condition, is one instruction the verifier refuses ("same insn cannot
	 * be used with different pointers"). */
	final_seq = c->final_write_seq;
	write_seq = tp->write_seq;
	asm volatile("" ::: "memory");
	return (h->tx_final ? final_seq : write_seq) == h->request_seq;
}

/* Fills a record's head; a struct sockeye_event starts with one. */
static __always_inline void fill_event(struct sockeye_event_head *e, const struct sock *sk,
				       const struct tcp_sock *tp, struct conn *c,
				       const struct conn_hot *h, __u8 kind, __u64 duration_ns)
{
	e->kind = kind;
	e->reason = 0;
	e->closed_by = c->closed_by == CLOSED_BY_UNKNOWN ? SOCKEYE_CLOSED_BY_LOCAL : c->closed_by;
	e->flags = (c->adopted ? SOCKEYE_EVF_ADOPTED : 0) |
		   (c->lifecycle == CONN_CLOSED ? SOCKEYE_EVF_CLOSED : 0) |
		   (c->frontend ? SOCKEYE_EVF_FRONTEND : 0);
	if (sweep_netns_inum) {
		const struct net *net = sk->__sk_common.skc_net.net;

		if (net && net->ns.inum != sweep_netns_inum)
			e->flags |= SOCKEYE_EVF_NOT_SWEPT;
	}
	e->srtt_us = tp->srtt_us >> 3; /* stored <<3 by tcp_rtt_estimator() */
	e->conn_id = c->conn_id;
	e->duration_ns = duration_ns;
	e->response_us = 0;
	e->backend = c->backend;
	read_totals(sk, tp, c, h, &e->totals);
}

static __always_inline bool totals_moved(const struct conn *c, const struct sockeye_conn_totals *t)
{
	return t->bytes_sent != c->reported_sent || t->bytes_received != c->reported_received ||
	       t->requests != c->reported_requests || t->retransmits != c->reported_retransmits;
}

static __always_inline void remember_reported(struct conn *c, const struct sockeye_conn_totals *t)
{
	c->reported_sent = t->bytes_sent;
	c->reported_received = t->bytes_received;
	c->reported_requests = t->requests;
	c->reported_retransmits = t->retransmits;
}

/* sock_orphan() (in tcp_close()) set SOCK_DEAD: the application has let go
 * of the socket, so nothing it does can move the totals again. */
static __always_inline bool socket_orphaned(const struct sock *sk)
{
	return sk->__sk_common.skc_flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DEAD));
}

/* Ring-buffer record; a full buffer is counted, per kind. Returns the
 * record's flags (none when the buffer was full). The agent drains
 * the ring on its own tick (every 100 ms), so records are submitted without
 * waking it, which would cost an irq_work and a wakeup per record; only a
 * ring past ringbuf_wakeup_bytes() wakes it early. */
/*
 * The ring buffer had no room for a record: keep its head in unsent_records,
 * where the agent collects it, so that its counts are late rather than lost.
 * Returns the record's flags, or 0 when the
 * map was full too and the record is lost (counted per kind).
 */
static __always_inline __u8 defer_record(const struct sock *sk, const struct tcp_sock *tp,
					 struct conn *c, struct conn_hot *h, __u8 kind,
					 __u64 duration_ns, __u8 reason)
{
	struct sockeye_unsent_key key = {.conn_id = c->conn_id, .kind = kind};
	struct sockeye_event_head head = {};

	fill_event(&head, sk, tp, c, h, kind, duration_ns);
	head.reason = reason;
	if (kind == SOCKEYE_EV_CLOSED) {
		head.response_us = take_response(h, true);
		if (request_unanswered(tp, c, h))
			head.flags |= SOCKEYE_EVF_UNANSWERED;
		if (socket_orphaned(sk) && !turns_pending(h))
			head.flags |= SOCKEYE_EVF_FINAL;
	}
	if (bpf_map_update_elem(&unsent_records, &key, &head, BPF_ANY)) {
		count_kernel(SOCKEYE_KC_RINGBUF_FULL + kind);
		return 0;
	}
	/* Turns still waiting stay where they are, for the next record (or
	 * counted as lost when the socket goes: socket_destroyed()). */
	remember_reported(c, &head.totals);
	count_kernel(SOCKEYE_KC_RECORDS_DEFERRED);
	return head.flags;
}

static __always_inline __u8 emit(const struct sock *sk, const struct tcp_sock *tp,
				 struct conn *c, struct conn_hot *h, __u8 kind, __u64 duration_ns,
				 __u8 reason)
{
	struct sockeye_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	__u8 flags;

	if (!e)
		return defer_record(sk, tp, c, h, kind, duration_ns, reason);
	fill_event((struct sockeye_event_head *)e, sk, tp, c, h, kind, duration_ns);
	remember_reported(c, &e->totals);
	take_turns(h, e);
	e->reason = reason;
	if (kind == SOCKEYE_EV_CLOSED) {
		/* Closed under the socket lock: the open response, if any, ended
		 * with its last byte, and a request still waiting got no answer. */
		e->response_us = take_response(h, true);
		if (request_unanswered(tp, c, h))
			e->flags |= SOCKEYE_EVF_UNANSWERED;
		if (socket_orphaned(sk) && !turns_pending(h))
			e->flags |= SOCKEYE_EVF_FINAL;
	}
	flags = e->flags;
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > ringbuf_wakeup_bytes()
				      ? BPF_RB_FORCE_WAKEUP
				      : BPF_RB_NO_WAKEUP);
	return flags;
}

#endif /* SOCKEYE_RECORDS_BPF_H */
