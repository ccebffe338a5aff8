// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Iterators the agent runs from user space: adopting connections that were
 * open before it started, and a periodic sweep that reports the totals of
 * live connections, so long downloads and idle keep-alive connections never
 * leave counters stale for longer than the sweep interval. Records go to
 * the iterator's seq_file, not the ring buffer, so a busy ring never loses
 * them.
 */
#include "sockeye.bpf.h"

static __always_inline void seq_emit(struct seq_file *seq, struct sockeye_event *e)
{
	if (bpf_seq_write(seq, e, sizeof(*e)))
		count_kernel(SOCKEYE_KC_SEQ_WRITE_FAILED);
}

/* The inode number /proc/PID/fd shows as socket:[N]. Walked through the
 * file rather than container_of(sock, struct socket_alloc, socket): the
 * verifier only follows typed fields, and bpf_probe_read_kernel() is refused
 * under lockdown=confidentiality. */
static __always_inline __u64 socket_inode(const struct sock *sk)
{
	struct socket *sock = sk->sk_socket;
	struct file *file;

	if (!sock)
		return 0;
	file = sock->file;
	if (!file)
		return 0;
	return file->f_inode->i_ino;
}

/* bpf_iter_tcp walks the listening hash before the established hash, so
 * every listener's port is known before the first connection is judged. */
SEC("iter/tcp")
int adopt_open_connections(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	const struct sockeye_filters *f;
	struct sockeye_endpoint backend;
	struct sockeye_event e = {};
	struct conn_hot *h;
	struct tcp_sock *tp;
	struct sock *sk;
	struct conn *c;
	bool frontend = false;
	__u16 local_port;
	__u8 one = 1;
	int state;

	if (!skc)
		return 0;
	state = skc->skc_state;
	local_port = skc->skc_num;
	if (state == TCP_LISTEN) {
		bpf_map_update_elem(&listen_ports, &local_port, &one, BPF_ANY);
		return 0;
	}
	if (state != TCP_ESTABLISHED && state != TCP_CLOSE_WAIT)
		return 0;
	/* Accepted on a frontend listener (the agent wrote frontend_listeners from
	 * its listener scan before this walk). */
	frontend = frontend_port((const struct sock *)skc);
	if (!frontend && bpf_map_lookup_elem(&listen_ports, &local_port))
		return 0; /* accepted from one of our listeners: not a backend */
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	sk = (struct sock *)tp;

	if (frontend) {
		read_endpoint(sk, &backend, LOCAL_END);
	} else {
		f = current_filters();
		if (!f)
			return 0;
		read_endpoint(sk, &backend, PEER_END);
		if (!backend_wanted(f, &backend))
			return 0;
		if (f->comm_count) {
			__u64 ino = socket_inode(sk);

			if (!bpf_map_lookup_elem(&adopt_inodes, &ino))
				return 0;
		}
	}

	c = bpf_sk_storage_get(&conns, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!c) {
		count_kernel(SOCKEYE_KC_STORAGE_FAILED);
		return 0;
	}
	if (c->conn_id)
		return 0; /* followed since its connect() */
	c->conn_id = next_conn_id();
	c->connect_start_ns = bpf_ktime_get_ns();
	c->backend = backend;
	c->closed_by = CLOSED_BY_UNKNOWN;
	c->adopted = 1;
	c->frontend = frontend;
	h = conn_mark_open(sk, tp, c);
	send_marks_add(sk);
	if (state == TCP_CLOSE_WAIT)
		c->closed_by = SOCKEYE_CLOSED_BY_REMOTE;

	fill_event((struct sockeye_event_head *)&e, sk, tp, c, h, SOCKEYE_EV_ADOPTED, 0);
	seq_emit(ctx->meta->seq, &e);
	return 0;
}

/* A response that received nothing for this long is complete, as far as
 * a sweep can tell: one default sweep interval. */
#define RESPONSE_IDLE_NS 1000000000ULL

/* One followed socket's progress record, for either sweep below. Only a
 * sweep that holds the socket lock (`locked`) may complete an idle
 * response: the receive hook writes the same fields under that lock. */
static __always_inline void sweep_socket(struct seq_file *seq, struct sock *sk,
					 const struct tcp_sock *tp, bool locked)
{
	struct sockeye_event e = {};
	struct conn_hot *h;
	struct conn *c;

	/* A map value rather than the iterator's ctx->value: the verifier
	 * allows compare-and-swap and variable offsets (turns[]) only there. */
	c = conn_lookup(sk);
	if (!c || c->lifecycle == CONN_CONNECTING)
		return;
	h = conn_hot(c);
	fill_event((struct sockeye_event_head *)&e, sk, tp, c, h, SOCKEYE_EV_PROGRESS, 0);
	/* The storage sweep holds no socket lock: if the slot changed hands
	 * while it was read, the connection was destroyed and its last record
	 * is out. */
	if (READ_ONCE_U64(h->owner) != c->cookie)
		return;
	/* Closed connections are reported only if they still moved (data the
	 * application reads after a reset or a FIN already closed the socket). */
	if (locked && c->lifecycle == CONN_OPEN)
		e.response_us = take_response(
			h, h->response_open && bpf_ktime_get_ns() - h->last_rx_ns > RESPONSE_IDLE_NS);
	if ((!sweep_all || c->lifecycle == CONN_CLOSED) && !totals_moved(c, &e.totals) &&
	    !turns_pending(h) && !e.response_us)
		return;
	remember_reported(c, &e.totals);
	take_turns(h, &e);
	seq_emit(seq, &e);
}

/* Visits exactly the sockets that carry sockeye's storage, including closed
 * ones not yet destroyed. */
SEC("iter/bpf_sk_storage_map")
int sweep_connections(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	struct sock *sk = ctx->sk;
	struct tcp_sock *tp;

	if (!sk || !ctx->value)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp)
		sweep_socket(ctx->meta->seq, sk, tp, false);
	return 0;
}

/*
 * For kernels that refuse map-element iterators (the guest kernel
 * 6.18.44-fc-v1272 of bench/README.md#machines-and-noise returns EPERM for
 * iter/bpf_sk_storage_map and iter/bpf_map_elem alike, inside the verifier
 * before any instruction is checked): every socket in
 * TCP's hash tables; most carry no storage and cost one load. It sees less
 * than the storage sweep: only the agent's own network namespace (records of
 * connections elsewhere carry SOCKEYE_EVF_NOT_SWEPT, see fill_event(), so a
 * full sweep does not retire them), and no closed sockets, which are
 * unhashed; what an application reads from one after its CLOSED record is
 * reported by the destroy hook (report_last_moves()). bpf_iter_tcp holds
 * each socket's lock while the program runs.
 */
SEC("iter/tcp")
int sweep_tcp_connections(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc); /* full sockets only: no time-wait or request socks */
	if (tp)
		sweep_socket(ctx->meta->seq, (struct sock *)tp, tp, true);
	return 0;
}
