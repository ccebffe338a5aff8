// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Connection lifecycle from sock:inet_sock_set_state: which sockets to
 * follow (active opens that pass the filters), connect time and failures,
 * who closed first, and the final totals at close.
 */
#define SOCKEYE_DEFINE_SHARED
#include "sockeye.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline __u8 failure_reason(const struct sock *sk)
{
	int err = sk->sk_err;

	switch (err) {
	case ECONNREFUSED:
		return SOCKEYE_FAIL_REFUSED;
	/* sk_err is 0 when the application gave up first (e.g. a proxy's own
	 * connect timeout closing the socket), which users see as a timeout. */
	case 0:
	case ETIMEDOUT:
		return SOCKEYE_FAIL_TIMEOUT;
	case EHOSTUNREACH:
	case ENETUNREACH:
		return SOCKEYE_FAIL_UNREACHABLE;
	case ECONNRESET:
	case ECONNABORTED:
		return SOCKEYE_FAIL_RESET;
	default:
		return SOCKEYE_FAIL_OTHER;
	}
}

/* CLOSE -> SYN_SENT runs in the connecting process, so comm is the
 * process that called connect(). */
static __always_inline int follow_connect(const struct sock *sk)
{
	const struct sockeye_filters *f = current_filters();
	struct sockeye_endpoint backend;
	struct conn *c;

	/* connect() again after tcp_disconnect(): whether or not the new
	 * connection is followed, the old one gives its hot slot back, which
	 * tcp_probe would otherwise keep finding by the socket's cookie. */
	c = conn_lookup(sk);
	if (c)
		release_hot_slot(c);
	if (!f)
		return 0;
	read_endpoint(sk, &backend, PEER_END);
	if (!backend_wanted(f, &backend))
		return 0;
	if (f->comm_count) {
		char comm[SOCKEYE_COMM_LEN] = {};

		bpf_get_current_comm(comm, sizeof(comm));
		if (!comm_wanted(f, comm))
			return 0;
	}

	c = bpf_sk_storage_get(&conns, (struct sock *)sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!c) {
		count_kernel(SOCKEYE_KC_STORAGE_FAILED);
		return 0;
	}
	/* A socket may connect() again after a failure: start afresh. */
	__builtin_memset(c, 0, sizeof(*c));
	c->conn_id = next_conn_id();
	c->connect_start_ns = bpf_ktime_get_ns();
	c->backend = backend;
	c->lifecycle = CONN_CONNECTING;
	c->closed_by = CLOSED_BY_UNKNOWN;
	send_marks_add(sk);
	return 0;
}

/*
 * SYN_RECV -> ESTABLISHED on a child socket (tcp_rcv_state_process(), the
 * handshake's last ACK; before the data that ACK may carry is queued):
 * a client connection a frontend listener accepted. Followed from here like
 * a backend one from its connect, with the turns the other way round.
 */
static __always_inline int follow_accept(const struct sock *sk)
{
	struct conn_hot *h;
	struct tcp_sock *tp;
	struct conn *c;

	if (!frontend_port(sk))
		return 0;
	tp = bpf_skc_to_tcp_sock((void *)sk);
	if (!tp)
		return 0;
	c = bpf_sk_storage_get(&conns, (struct sock *)sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!c) {
		count_kernel(SOCKEYE_KC_STORAGE_FAILED);
		return 0;
	}
	if (c->conn_id)
		return 0;
	c->conn_id = next_conn_id();
	c->connect_start_ns = bpf_ktime_get_ns();
	read_endpoint(sk, &c->backend, LOCAL_END);
	c->closed_by = CLOSED_BY_UNKNOWN;
	c->frontend = 1;
	h = conn_mark_open((struct sock *)sk, tp, c);
	emit(sk, tp, c, h, SOCKEYE_EV_CONNECTED, 0, 0);
	return 0;
}

/* States only an established connection passes through. */
static __always_inline bool was_established(int state)
{
	return state != TCP_SYN_SENT && state != TCP_SYN_RECV && state != TCP_CLOSE &&
	       state != TCP_NEW_SYN_RECV && state != TCP_LISTEN;
}

static __always_inline void report_connect_failed(const struct sock *sk, struct tcp_sock *tp,
						  struct conn *c)
{
	__u64 now = bpf_ktime_get_ns();

	c->lifecycle = CONN_CLOSED;
	send_marks_remove(sk);
	emit(sk, tp, c, &c->hot, SOCKEYE_EV_CONNECT_FAILED, now - c->connect_start_ns,
	     failure_reason(sk));
}

static __always_inline void report_close(const struct sock *sk, struct tcp_sock *tp,
					 struct conn *c, struct conn_hot *h, __u8 seen_late)
{
	__u64 now = bpf_ktime_get_ns();

	/* Nothing is sent in CLOSE, and tcp_disconnect() advances write_seq by
	 * a window right after this transition. read_totals() also tells a
	 * disconnect by sk_shutdown 0, but a reset processed from the backlog
	 * at release_sock() sets it again (seen with receive packet steering). */
	if (!h->tx_final) {
		c->final_write_seq = tp->write_seq;
		h->tx_final = 1;
	}
	c->lifecycle = CONN_CLOSED;
	send_marks_remove(sk);
	if (emit(sk, tp, c, h, SOCKEYE_EV_CLOSED, now - c->connect_start_ns, seen_late) &
	    SOCKEYE_EVF_FINAL)
		c->close_final = 1;
	c->close_reported = 1;
}

static __always_inline int state_changed(const struct sock *sk, int oldstate, int newstate)
{
	struct conn_hot *h;
	struct tcp_sock *tp;
	struct conn *c;
	__u64 now;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (newstate == TCP_SYN_SENT)
		return follow_connect(sk);

	c = conn_lookup(sk);
	if (!c) {
		if (follow_frontends && newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_RECV)
			return follow_accept(sk);
		return 0;
	}
	tp = bpf_skc_to_tcp_sock((void *)sk);
	if (!tp)
		return 0;

	/* The clock is read only where a duration is reported: a read costs
	 * 90-160 ns on some virtual machines
	 * (bench/README.md#machines-and-noise). */
	if (c->lifecycle == CONN_CONNECTING && was_established(oldstate)) {
		/* Its ESTABLISHED transition was missed (hook_guards). */
		h = conn_mark_open_late((struct sock *)sk, tp, c);
		emit(sk, tp, c, h, SOCKEYE_EV_CONNECTED, 0, SOCKEYE_SEEN_LATE);
	}
	if (c->lifecycle == CONN_CONNECTING) {
		if (newstate == TCP_ESTABLISHED) {
			now = bpf_ktime_get_ns();
			h = conn_mark_open((struct sock *)sk, tp, c);
			emit(sk, tp, c, h, SOCKEYE_EV_CONNECTED, now - c->connect_start_ns, 0);
		} else if (newstate == TCP_CLOSE) {
			report_connect_failed(sk, tp, c);
		}
		return 0;
	}
	if (c->lifecycle != CONN_OPEN)
		return 0;
	h = conn_hot(c);

	/* Data queued since the backend's last segment is a request even if no
	 * segment ever comes back (a dead backend): without a send hook nothing
	 * else would count it. Before the FIN below, which is not a request. */
	note_send_progress(tp, h);

	/* tcp_close_state() moves to FIN_WAIT1/LAST_ACK just before
	 * tcp_send_fin() adds the FIN to write_seq: freeze the send total,
	 * once. A close() after shutdown(SHUT_WR) (HAProxy closing a client
	 * connection) runs tcp_close_state() again and traces FIN_WAIT1 ->
	 * FIN_WAIT1, with the FIN already in write_seq: frozen again, every such
	 * connection counted one byte too many. */
	if ((newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK) && !h->tx_final) {
		c->final_write_seq = tp->write_seq;
		h->tx_final = 1;
	}
	/* CLOSE_WAIT (the backend's FIN came first) is not hooked: LAST_ACK, or
	 * a CLOSE straight from it (a reset, an abortive close), says so. */
	if (c->closed_by == CLOSED_BY_UNKNOWN) {
		if (newstate == TCP_FIN_WAIT1)
			c->closed_by = SOCKEYE_CLOSED_BY_LOCAL;
		else if (newstate == TCP_LAST_ACK || oldstate == TCP_CLOSE_WAIT)
			c->closed_by = SOCKEYE_CLOSED_BY_REMOTE;
		else if (newstate == TCP_CLOSE)
			c->closed_by = c->resets_received ? SOCKEYE_CLOSED_BY_REMOTE
							  : SOCKEYE_CLOSED_BY_LOCAL;
	}
	if (newstate == TCP_CLOSE)
		report_close(sk, tp, c, h, 0);
	return 0;
}

/* A connect, or a socket that may be followed: the runs worth guarding.
 * FIN_WAIT2 and CLOSE_WAIT change nothing state_changed() needs then
 * (FIN_WAIT1 froze the send total and said who closed; who closed after a
 * CLOSE_WAIT shows at the next transition, and so does a missed
 * ESTABLISHED or a request queued meanwhile), and a followed connection's
 * transition costs ~100 ns even so. An accepted connection is one only on
 * a frontend listener's port. */
static __always_inline bool state_change_matters(const struct sock *sk, int oldstate,
						 int newstate)
{
	if (newstate == TCP_FIN_WAIT2 || newstate == TCP_CLOSE_WAIT)
		return false;
	if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_RECV && frontend_port_listed(sk))
		return true;
	return newstate == TCP_SYN_SENT || may_be_followed(sk);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_inet_sock_set_state, const struct sock *sk, int oldstate, int newstate)
{
	struct hook_guard *g;

	if (!state_change_matters(sk, oldstate, newstate))
		return 0;
	g = guard_enter(SOCKEYE_GUARD_STATE);
	state_changed(sk, oldstate, newstate);
	guard_leave(g);
	return 0;
}

/* The state changes the kernel skipped in on_inet_sock_set_state (see
 * hook_guards.bpf.h). */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_inet_sock_set_state_standby, const struct sock *sk, int oldstate, int newstate)
{
	if (state_change_matters(sk, oldstate, newstate) && standby_needed(SOCKEYE_GUARD_STATE))
		state_changed(sk, oldstate, newstate);
	return 0;
}

/*
 * The socket is being destroyed (tcp_v4_destroy_sock(); its storage is
 * still attached). A reset can move a socket to CLOSE while received data
 * still waits in its queue; the application reads it after the CLOSED
 * record went out and then closes. Report what moved since, once, and
 * give the hot slot back.
 */
static __always_inline void report_last_moves(struct sock *sk, struct conn *c)
{
	struct sockeye_conn_totals totals;
	struct conn_hot *h = conn_hot(c);
	struct tcp_sock *tp;

	if (c->lifecycle != CONN_CLOSED || !c->opened)
		return;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return;
	read_totals(sk, tp, c, h, &totals);
	if (totals_moved(c, &totals) || turns_pending(h))
		emit(sk, tp, c, h, SOCKEYE_EV_PROGRESS, 0, 0);
}

/*
 * A socket is destroyed only in CLOSE (inet_csk_destroy_sock()): a followed
 * one not closed here had its CLOSE transition missed (hook_guards). Report
 * the close now. tcp_disconnect() may have advanced write_seq by a window
 * since, but not snd_nxt, which is where sending stopped; it also set
 * copied_seq to rcv_nxt, so data left unread then counts as received. It
 * zeroes bytes_acked too: a connection whose ESTABLISHED was missed as well
 * is then reported as a failed connect.
 */
static __always_inline void report_missed_close(struct sock *sk, struct conn *c)
{
	struct conn_hot *h;
	struct tcp_sock *tp;

	if (c->lifecycle == CONN_CLOSED)
		return;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return;
	/* bytes_acked counts the SYN once the SYN-ACK came: it was open. */
	if (c->lifecycle == CONN_CONNECTING && tp->bytes_acked) {
		conn_mark_open_late(sk, tp, c);
		emit(sk, tp, c, conn_hot(c), SOCKEYE_EV_CONNECTED, 0, SOCKEYE_SEEN_LATE);
	}
	if (c->lifecycle == CONN_CONNECTING) {
		report_connect_failed(sk, tp, c);
		return;
	}
	if (c->lifecycle != CONN_OPEN)
		return;
	h = conn_hot(c);
	/* A request a state change would have counted (state_changed()); not
	 * after tcp_disconnect(), whose jump of write_seq would look like one. */
	if (tp->write_seq - tp->snd_nxt <= tp->max_window)
		note_send_progress(tp, h);
	if (!h->tx_final) {
		c->final_write_seq = tp->snd_nxt;
		h->tx_final = 1;
	}
	if (c->closed_by == CLOSED_BY_UNKNOWN)
		c->closed_by = c->resets_received ? SOCKEYE_CLOSED_BY_REMOTE : SOCKEYE_CLOSED_BY_LOCAL;
	report_close(sk, tp, c, h, SOCKEYE_SEEN_LATE);
}

static __always_inline void socket_destroyed(struct sock *sk)
{
	struct conn *c = conn_lookup(sk);
	__u64 lost;

	if (!c)
		return;
	report_missed_close(sk, c);
	report_last_moves(sk, c);
	/* Counts what a slot still held; its state is in the storage after. */
	release_hot_slot(c);
	/* The storage goes with the socket: what is still waiting is lost. */
	lost = turns_pending(&c->hot);
	if (lost)
		count_kernel_by(SOCKEYE_KC_TURNS_LOST, lost);
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(on_tcp_destroy_sock, struct sock *sk)
{
	struct hook_guard *g;

	if (!may_be_followed(sk))
		return 0;
	g = guard_enter(SOCKEYE_GUARD_DESTROY);
	socket_destroyed(sk);
	guard_leave(g);
	return 0;
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(on_tcp_destroy_sock_standby, struct sock *sk)
{
	if (may_be_followed(sk) && standby_needed(SOCKEYE_GUARD_DESTROY))
		socket_destroyed(sk);
	return 0;
}
