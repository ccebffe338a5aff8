// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The frontend side's responses, read where the proxy hands them to TCP:
 * tcp:tcp_sendmsg_locked (Linux 6.16+, "trace: add tracepoint for
 * tcp_sendmsg_locked()") fires at each step of tcp_sendmsg_locked()'s copy
 * loop, before the bytes are copied, with the proxy's own buffer in
 * msg->msg_iter and tp->write_seq the sequence number of its first byte.
 *
 * Where the kernel has it, this program replaces the cgroup_skb egress one
 * (http_status.bpf.c), which runs for every packet any socket on the host
 * sends -- pure ACKs and other processes' traffic included -- and pays the
 * cgroup dispatch each time. This one runs once per send() of a TCP socket,
 * and a socket sockeye does not follow leaves after one load; on a
 * followed frontend it reads ~12 bytes once per response. Measured side by
 * side: bench/README.md#current-results (hook_cost, proxy_cost).
 *
 * The response's first byte is timed here, with a clock read: the send
 * starts now, and tcp_clock_cache is not refreshed until the transmit that
 * follows. The request was timed at its arrival (conn_data.bpf.c).
 */
#include "sockeye.bpf.h"
#include "status_line.bpf.h"

/* Flavours of the kernel's types, so that a build host whose BTF predates
 * Linux 6.4 (iov_iter's `iov` became `__iov`) compiles them; CO-RE
 * relocates them to the running kernel's, which has the tracepoint only
 * from 6.16 on. */
enum iter_type___sockeye { ITER_UBUF___sockeye, ITER_IOVEC___sockeye };

struct iov_iter___sockeye {
	__u8 iter_type;
	size_t iov_offset;
	union {
		struct {
			union {
				const struct iovec *__iov;
				void *ubuf;
			};
			size_t count;
		};
	};
} __attribute__((preserve_access_index));

/* Bytes of a response looked at: a status line, or an interim response's
 * header block and the final status line after it. */
#define SEND_BUFFER_MAX (1U << 20)

/* Where the bytes this step of the copy loop sends start, in the sender's
 * memory, and how many follow there; `entry` 1 asks for the next buffer of
 * a writev() instead. send() and write() give one buffer (ITER_UBUF);
 * writev() and sendmsg() an array, of which the iterator's current entry
 * holds the next bytes (ITER_IOVEC). Kernel buffers (kTLS, splice) are not
 * read. */
static __always_inline bool send_buffer(const struct msghdr *msg, int entry, const __u8 **start,
					__u32 *len)
{
	const struct iov_iter___sockeye *it = (const void *)&msg->msg_iter;
	__u8 type = it->iter_type;
	size_t offset = it->iov_offset;
	size_t left = it->count;

	if (type == bpf_core_enum_value(enum iter_type___sockeye, ITER_UBUF___sockeye)) {
		if (entry)
			return false;
		*start = (const __u8 *)it->ubuf + offset;
	} else if (type == bpf_core_enum_value(enum iter_type___sockeye, ITER_IOVEC___sockeye)) {
		const struct iovec *iov = it->__iov;
		size_t size = iov->iov_len;

		if (offset >= size)
			return false;
		if (entry) {
			/* The first entry's bytes are behind, the next one's ahead. */
			if (left <= size - offset)
				return false;
			left -= size - offset;
			iov += 1;
			size = iov->iov_len;
			offset = 0;
		}
		*start = (const __u8 *)iov->iov_base + offset;
		if (size - offset < left)
			left = size - offset;
	} else {
		return false;
	}
	*len = left < SEND_BUFFER_MAX ? left : SEND_BUFFER_MAX;
	return *len > 0;
}

/* The first bytes the proxy sends at or past request_seq start the
 * response (or, after an interim response, those at status_seq). */
static __always_inline void response_send_started(const struct tcp_sock *tp, struct conn_hot *h,
						  const struct msghdr *msg)
{
	struct payload p = {.source = PAYLOAD_SEND_BUFFER};
	__u32 seq = tp->write_seq;
	__u32 len;
	__u64 now;

	if (h->status_interim) {
		if (seq != h->status_seq)
			return;
	} else if ((__s32)(seq - h->request_seq) < 0) {
		return; /* the rest of an older response */
	}
	if (h->http != HTTP_NO) {
		if (send_buffer(msg, 0, &p.buffer, &len)) {
			read_status(&p, h, 0, len, seq);
			/* An interim response that fills the first buffer of a
			 * writev(): the final one starts the next. */
			if (h->status_hold && send_buffer(msg, 1, &p.buffer, &len))
				read_status(&p, h, 0, len, h->status_seq);
		} else {
			h->status_interim = 0;
			h->status_hold = 0;
			if (h->http == HTTP_YES)
				count_kernel(SOCKEYE_KC_STATUS_UNREAD);
		}
	}
	if (h->status_hold)
		return;
	now = bpf_ktime_get_ns();
	h->phase = PHASE_RECEIVING;
	record_turn(tp, h, now > h->turn_start_ns ? now - h->turn_start_ns : 0);
}

/* Sockets without socket storage leave after one load, as at tcp_probe
 * (conn_data.bpf.c). */
SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(on_tcp_sendmsg_locked, struct sock *sk, const struct msghdr *msg,
	     const struct sk_buff *skb, int size_goal)
{
	const struct tcp_sock *tp;
	struct conn_hot *h;
	struct conn *c;

	if (bpf_core_field_exists(sk->sk_bpf_storage) && !sk->sk_bpf_storage)
		return 0;
	h = owned_hot_slot((__u64)sk->__sk_common.skc_cookie.counter);
	if (!h) {
		c = conn_lookup(sk);
		if (!c || c->lifecycle != CONN_OPEN)
			return 0;
		h = &c->hot;
	}
	if (!h->frontend || h->phase != PHASE_AWAITING_RESPONSE)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp)
		response_send_started(tp, h, msg);
	return 0;
}
