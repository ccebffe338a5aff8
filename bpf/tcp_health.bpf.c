// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Resets sent and received on followed connections. Retransmits and RTT
 * need no hook: tcp_sock.total_retrans and srtt_us are read with every
 * record (read_totals(), read_srtt_us()).
 */
#include "sockeye.bpf.h"

static __always_inline void reset_sent(const struct sock *sk)
{
	struct tcp_sock *tp;
	struct conn *c;

	if (!sk) /* Linux 6.10+: a reset answering a packet with no socket */
		return;
	c = conn_lookup(sk);
	if (!c)
		return;
	__sync_fetch_and_add(&c->resets_sent, 1);
	/* tcp_close() with unread data, tcp_disconnect() and a few orphan
	 * paths move the socket to CLOSE before tcp_send_active_reset(), so the
	 * CLOSED record has gone out without this reset and the socket is about
	 * to be freed: report it now. The agent has forgotten a connection
	 * whose close record was final, so that one gets a record of its own. */
	if (c->lifecycle == CONN_CLOSED) {
		tp = bpf_skc_to_tcp_sock((void *)sk);
		if (tp)
			emit(sk, tp, c, conn_hot(c),
			     c->close_final ? SOCKEYE_EV_RESET_AFTER_CLOSE : SOCKEYE_EV_PROGRESS, 0, 0);
	}
}

static __always_inline void reset_received(struct sock *sk)
{
	struct conn *c = conn_lookup(sk);

	if (c)
		__sync_fetch_and_add(&c->resets_received, 1);
}

/* Each with a standby for the runs the kernel skips (hook_guards.bpf.h):
 * a reset sent by close() in process context can be interrupted by a
 * softirq that sends or receives another. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_tcp_send_reset, const struct sock *sk)
{
	struct hook_guard *g;

	if (!sk || !may_be_followed(sk))
		return 0;
	g = guard_enter(SOCKEYE_GUARD_RESET_SENT);
	reset_sent(sk);
	guard_leave(g);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_tcp_send_reset_standby, const struct sock *sk)
{
	if (sk && may_be_followed(sk) && standby_needed(SOCKEYE_GUARD_RESET_SENT))
		reset_sent(sk);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(on_tcp_receive_reset, struct sock *sk)
{
	struct hook_guard *g;

	if (!may_be_followed(sk))
		return 0;
	g = guard_enter(SOCKEYE_GUARD_RESET_RECEIVED);
	reset_received(sk);
	guard_leave(g);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(on_tcp_receive_reset_standby, struct sock *sk)
{
	if (may_be_followed(sk) && standby_needed(SOCKEYE_GUARD_RESET_RECEIVED))
		reset_received(sk);
	return 0;
}
