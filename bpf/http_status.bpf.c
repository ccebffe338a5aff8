// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * HTTP/1.x status of each response on a followed connection, read from the
 * first bytes of the response's first segment as it enters the host.
 *
 * A cgroup_skb/ingress program runs for every received packet of the
 * sockets in the cgroups it is attached to (tcp_filter() in tcp_v4_rcv() and
 * tcp_v6_rcv(), before TCP processes the segment and before the receive hook
 * sees it). It may read the payload with bpf_skb_load_bytes() -- no probe
 * read, so it runs under any lockdown -- and reach the socket's hot state.
 * It leaves after a load or two for sockets sockeye does not follow, and for
 * a followed one after one comparison unless a request was sent since the
 * last response started. It must always return 1: 0 drops the packet.
 *
 * Which segment starts the response: the one at rcv_nxt (the next in-order
 * byte; a retransmission of older data or an out-of-order segment is not it,
 * and the missing one comes later at rcv_nxt) that acknowledges some of the
 * request, as in on_data_ready(). Pipelined requests (several sent before the
 * first response) get the status of the first response only.
 */
#include "sockeye.bpf.h"
#include "http_status.h"

/* How far an interim response's header block is searched for its end: "100
 * Continue" takes 25 bytes; 103 Early Hints with long Link headers can take
 * more, and then the response counts without a status
 * (SOCKEYE_KC_STATUS_UNREAD). A power of two. */
#define INTERIM_SCAN_BYTES 128

struct segment {
	__u32 seq;
	__u32 ack;
	__u32 payload;	   /* offset of the payload from the network header */
	__u32 payload_len;
};

static __always_inline __u32 be32(const __u8 *p)
{
	return ((__u32)p[0] << 24) | ((__u32)p[1] << 16) | ((__u32)p[2] << 8) | p[3];
}

/* The TCP header's sequence numbers and where the payload starts. The
 * headers are read in place when they are in the packet's linear part (as
 * they are on every path TCP receives from): each bpf_skb_load_bytes() call
 * cost ~25 ns on the measuring host, once per response
 * (bench/results/hook_cost_http_status_split_2026-12-07.txt). */
static __always_inline bool read_segment(struct __sk_buff *skb, struct segment *s)
{
	const __u8 *data = (const __u8 *)(long)skb->data;
	const __u8 *data_end = (const __u8 *)(long)skb->data_end;
	__u8 first, next_header, th_copy[16];
	const __u8 *th;
	__u32 tcp_off;

	if (data + 1 > data_end) {
		if (bpf_skb_load_bytes(skb, 0, &first, 1))
			return false;
	} else {
		first = data[0];
	}
	if ((first >> 4) == 4) {
		tcp_off = (first & 0xf) * 4;
	} else if ((first >> 4) == 6) {
		/* Extension headers are not followed: TCP right after the fixed header. */
		if (data + 7 <= data_end)
			next_header = data[6];
		else if (bpf_skb_load_bytes(skb, 6, &next_header, 1))
			return false;
		if (next_header != IPPROTO_TCP)
			return false;
		tcp_off = 40;
	} else {
		return false;
	}
	th = data + tcp_off;
	if (th + 16 > data_end) {
		if (bpf_skb_load_bytes(skb, tcp_off, th_copy, sizeof(th_copy)))
			return false;
		th = th_copy;
	}
	s->seq = be32(th + 4);
	s->ack = be32(th + 8);
	s->payload = tcp_off + (th[12] >> 4) * 4;
	s->payload_len = skb->len > s->payload ? skb->len - s->payload : 0;
	return true;
}

/* Offset just past the "\r\n\r\n" that ends a header block starting at
 * `from`, if it is within the first INTERIM_SCAN_BYTES of it in this
 * segment; else 0. Each position is tested on its own, with no state carried
 * from one to the next, so that the verifier's walk of the loop stays short. */
static __always_inline __u32 header_block_end(struct __sk_buff *skb, __u32 from, __u32 end)
{
	__u8 buf[INTERIM_SCAN_BYTES] = {};
	__u32 len;

	if (from >= end)
		return 0;
	len = end - from;
	if (len > INTERIM_SCAN_BYTES)
		len = INTERIM_SCAN_BYTES;
	/* 1..INTERIM_SCAN_BYTES in a form the verifier can bound. */
	len = ((len - 1) & (INTERIM_SCAN_BYTES - 1)) + 1;
	if (bpf_skb_load_bytes(skb, from, buf, len))
		return 0;
	/* Bytes past len stay 0 and never match. */
	for (__u32 i = 0; i + 4 <= INTERIM_SCAN_BYTES; i++) {
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
			return from + i + 4;
	}
	return 0;
}

/* The status line at `at`: its code, -1 if it is none, or 0 if the
 * segment ends before one could be read and what it holds could start one. */
static __always_inline int status_at(struct __sk_buff *skb, __u32 at, __u32 end)
{
	static const char prefix[] = "HTTP/1.";
	unsigned char line[SOCKEYE_STATUS_LINE_LEN] = {};
	__u32 len;

	if (at >= end)
		return 0;
	len = end - at;
	if (len >= SOCKEYE_STATUS_LINE_LEN) {
		if (bpf_skb_load_bytes(skb, at, line, sizeof(line)))
			return 0;
		return sockeye_http_status(line);
	}
	/* 1..SOCKEYE_STATUS_LINE_LEN - 1 in a form the verifier can bound. */
	len = ((len - 1) & 15) + 1;
	if (len >= SOCKEYE_STATUS_LINE_LEN || bpf_skb_load_bytes(skb, at, line, len))
		return 0;
	for (__u32 i = 0; i < sizeof(prefix) - 1; i++) {
		if (i < len && line[i] != prefix[i])
			return -1;
	}
	return 0;
}

/* Reads the status line at the start of a response in this segment, and
 * the final one after an interim response in the same segment. */
static __always_inline void read_status(struct __sk_buff *skb, struct conn_hot *h,
					const struct segment *s)
{
	__u32 end = s->payload + s->payload_len;
	__u32 next;
	int code;

	h->status_interim = 0;
	h->status_hold = 0;
	code = status_at(skb, s->payload, end);
	if (code < 0) {
		/* Not a status line: on a connection known to speak HTTP/1.x a
		 * response of some other shape; else not HTTP/1.x at all. */
		if (h->http == HTTP_YES)
			h->status = SOCKEYE_STATUS_OTHER;
		else
			h->http = HTTP_NO;
		return;
	}
	if (code == 0) {
		if (h->http == HTTP_YES)
			count_kernel(SOCKEYE_KC_STATUS_UNREAD);
		return;
	}
	h->http = HTTP_YES;
	if (!sockeye_http_status_is_interim(code)) {
		h->status = code;
		return;
	}
	next = header_block_end(skb, s->payload + SOCKEYE_STATUS_LINE_LEN, end);
	if (!next) {
		count_kernel(SOCKEYE_KC_STATUS_UNREAD);
		return;
	}
	if (next >= end) {
		/* The final status comes in a later segment: the turn waits. */
		h->status_interim = 1;
		h->status_hold = 1;
		h->status_seq = s->seq + (end - s->payload);
		return;
	}
	code = status_at(skb, next, end);
	if (code > 0 && !sockeye_http_status_is_interim(code))
		h->status = code;
	else if (code < 0)
		h->status = SOCKEYE_STATUS_OTHER;
	else
		count_kernel(SOCKEYE_KC_STATUS_UNREAD);
}

static __always_inline void segment_arrived(struct __sk_buff *skb, const struct tcp_sock *tp,
					    struct conn_hot *h)
{
	struct segment s;
	__u32 write_seq;

	/* A frontend connection receives requests: its responses are read on
	 * egress (on_cgroup_egress()). */
	if (h->http == HTTP_NO || h->frontend)
		return;
	write_seq = tp->write_seq;
	if (write_seq == h->status_write_seq && !h->status_interim)
		return; /* no request since the last response started */
	if (!read_segment(skb, &s) || !s.payload_len)
		return;
	if (h->status_interim) {
		if (s.seq != h->status_seq)
			return;
	} else {
		if (s.seq != tp->rcv_nxt)
			return;
		/* Sent before the backend had any of the request: not its answer. */
		if ((__s32)(s.ack - h->status_write_seq) <= 0)
			return;
	}
	h->status_write_seq = write_seq;
	read_status(skb, h, &s);
}

/* A followed connection's hot state, or NULL. `bsk` is the packet's socket
 * as the helpers take it: bpf_sk_storage_get() needs a trusted pointer. */
static __always_inline struct conn_hot *followed_state(const struct sock *sk, struct bpf_sock *bsk)
{
	struct bpf_sock *fsk;
	struct conn *c;
	struct conn_hot *h = owned_hot_slot((__u64)sk->__sk_common.skc_cookie.counter);

	if (h)
		return h;
	fsk = bpf_sk_fullsock(bsk);
	if (!fsk)
		return NULL;
	c = bpf_sk_storage_get(&conns, fsk, 0, 0);
	if (!c || c->lifecycle != CONN_OPEN)
		return NULL;
	return &c->hot;
}

/*
 * The packet's socket as a TCP socket sockeye may follow, or NULL. This
 * test runs for every packet, so its cost is the program's cost for the
 * sockets sockeye does not follow.
 *
 * Built with SOCKEYE_STATUS_CAST (Linux 6.2+, "bpf: Add a kfunc for generic
 * type cast"): bpf_rdonly_cast(), which the verifier turns into a register
 * move, so an unfollowed socket costs three loads and no call: +6 ns over an
 * empty program where bpf_skc_to_tcp_sock() cost +31, a helper call paying
 * for a return-stack mitigation on the measuring host
 * (bench/results/hook_cost_http_status_shipped_2026-12-07.txt). That
 * build is an object of its own (status_cast.skel.h), which the agent opens
 * only where the kernel BTF has the kfunc: its extern in the main object
 * made libbpf 1.1 fail the whole object on 6.1 when it may not list module
 * BTFs (without CAP_SYS_ADMIN, as the packaged unit runs). The main object
 * keeps the helper build, for older kernels and as the fallback when the
 * other fails to load or attach (agent/status_cast.h).
 */
#ifdef SOCKEYE_STATUS_CAST
/* An object of its own needs its own license, GPL-compatible for kfuncs. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

static __always_inline const struct tcp_sock *packet_tcp_sock(struct bpf_sock *bsk)
{
	const struct sock *sk;
	__u32 state = bsk->state;

	/* Time-wait and request sockets are not full sockets: no storage. */
	if (state == TCP_TIME_WAIT || state == TCP_NEW_SYN_RECV)
		return NULL;
	sk = bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct sock));
	if (!may_be_followed(sk) || sk->sk_protocol != IPPROTO_TCP)
		return NULL;
	return bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct tcp_sock));
}
#define STATUS_PROGRAM on_cgroup_ingress_cast
#define EGRESS_PROGRAM on_cgroup_egress_cast
#else
static __always_inline const struct tcp_sock *packet_tcp_sock(struct bpf_sock *bsk)
{
	const struct tcp_sock *tp = bpf_skc_to_tcp_sock(bsk);

	if (!tp || !may_be_followed((const struct sock *)tp))
		return NULL;
	return tp;
}
#define STATUS_PROGRAM on_cgroup_ingress
#define EGRESS_PROGRAM on_cgroup_egress
#endif

/* The hot state of the connection a packet belongs to, if sockeye follows
 * it, and its tcp_sock in *tp: what both programs look up first. */
static __always_inline struct conn_hot *packet_conn_hot(struct __sk_buff *skb,
							const struct tcp_sock **tp)
{
	struct bpf_sock *bsk = skb->sk;

	if (!bsk)
		return NULL;
	*tp = packet_tcp_sock(bsk);
	if (!*tp)
		return NULL;
	return followed_state((const struct sock *)*tp, bsk);
}

SEC("cgroup_skb/ingress")
int STATUS_PROGRAM(struct __sk_buff *skb)
{
	const struct tcp_sock *tp;
	struct conn_hot *h = packet_conn_hot(skb, &tp);

	if (h)
		segment_arrived(skb, tp, h);
	return 1;
}

/*
 * The frontend side: a frontend connection's response leaves the host, so
 * its first segment is read on egress (__cgroup_bpf_run_filter_skb() from
 * ip_finish_output() and ip6_finish_output(), under the socket lock that
 * tcp_write_xmit() holds). The first segment with payload at or past
 * request_seq -- where the proxy's next byte was when the request arrived --
 * starts the response: its status is read as on ingress, and the response
 * time (request arrival to this transmission, both from tcp_clock_cache,
 * which tcp_write_xmit() has just refreshed) closes the turn. A
 * retransmission of it finds the turn already closed.
 */
static __always_inline void response_segment_sent(struct __sk_buff *skb,
						  const struct tcp_sock *tp, struct conn_hot *h)
{
	struct segment s;
	__u64 now;

	if (!read_segment(skb, &s) || !s.payload_len)
		return;
	if (h->status_interim) {
		if (s.seq != h->status_seq)
			return;
	} else if ((__s32)(s.seq - h->request_seq) < 0) {
		return; /* sent before the request came: an older response's */
	}
	if (h->http != HTTP_NO)
		read_status(skb, h, &s);
	/* An interim (1xx) response: the turn ends at the final one. */
	if (h->status_hold)
		return;
	now = last_transmit_ns(tp);
	h->phase = PHASE_RECEIVING;
	record_turn(tp, h, now > h->turn_start_ns ? now - h->turn_start_ns : 0);
}

SEC("cgroup_skb/egress")
int EGRESS_PROGRAM(struct __sk_buff *skb)
{
	const struct tcp_sock *tp;
	struct conn_hot *h = packet_conn_hot(skb, &tp);

	if (h && h->frontend && h->phase == PHASE_AWAITING_RESPONSE)
		response_segment_sent(skb, tp, h);
	return 1;
}
