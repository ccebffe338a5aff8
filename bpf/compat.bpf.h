/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel differences sockeye's BPF programs depend on, in one place. Every
 * entry names the kernel change behind it. No kernel-version #ifs: all of
 * this is resolved at load time by CO-RE or by the agent's feature probes.
 */
#ifndef SOCKEYE_COMPAT_BPF_H
#define SOCKEYE_COMPAT_BPF_H

/* Constants that live in macros (so not in vmlinux.h BTF). */
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define ECONNREFUSED 111
#define ETIMEDOUT 110
#define EHOSTUNREACH 113
#define ENETUNREACH 101
#define ECONNRESET 104
#define ECONNABORTED 103
#define TCPHDR_FIN 0x01

/*
 * sock:sock_send_length (tp_btf signature (struct sock *sk, int ret,
 * int flags)) appeared in Linux 6.3 ("net/socket:
 * Add tracepoints for sendmsg/recvmsg return values", net/socket.c). On older
 * kernels the agent switches the programs that use them off before load.
 *
 * sock:sk_data_ready (tp_btf signature (const struct sock *sk)) came with
 * "net/sock: Introduce trace_sk_data_ready()" (Peilin Ye, 2023, Linux 6.3),
 * inside sock_def_readable() and the other data-ready callbacks; where it is
 * missing the agent runs the same program at fentry on sock_def_readable()
 * if fentry is allowed, else times responses at tcp:tcp_probe. The program
 * reads tcp_sock.rack.mstamp, a departure time in microseconds since "tcp:
 * switch rack to tcp_mstamp" (Linux 4.13), and tcp_clock_cache (Linux 4.20):
 * both older than anything else sockeye needs (BTF, ring buffer: 5.8).
 *
 * tcp:tcp_send_reset gained a reason argument and may pass sk == NULL for
 * resets that answer a packet with no socket since Linux 6.10 ("tcp: add
 * reset reason in tcp_send_reset tracepoint" and the rstreason series). We
 * only read the first argument and check it for NULL.
 *
 * sock->sk_protocol is a plain u16 since Linux 5.6 ("net: Make sk_protocol a
 * 16-bit value", previously a bitfield). Every kernel with BPF ring buffers
 * (5.8+) has the plain field.
 *
 * tcp_done_with_error() (Linux 6.10, "tcp: fix races in tcp_v[46]_err()")
 * and the older open-coded paths in tcp_reset()/tcp_write_err() all store
 * sk->sk_err BEFORE tcp_done() moves the socket to TCP_CLOSE, so the
 * SYN_SENT -> CLOSE transition can read the failure reason from sk_err.
 */

/* Payload length of a received segment from its control block: end_seq
 * counts a FIN as one sequence number (see tcp_v4_fill_cb()). Read directly
 * through the BTF pointer: bpf_probe_read_kernel() (BPF_CORE_READ) is
 * refused under lockdown=confidentiality ("bpf: Restrict bpf_probe_read
 * with lockdown", Linux 5.5), direct loads are not. */
static __always_inline __u32 skb_tcp_payload_len(const struct sk_buff *skb)
{
	const struct tcp_skb_cb *tcb = (const void *)skb->cb;
	__u32 seq = tcb->seq;
	__u32 end_seq = tcb->end_seq;
	__u16 flags = tcb->tcp_flags;
	__u32 len = end_seq - seq;

	if ((flags & TCPHDR_FIN) && len > 0)
		len -= 1;
	return len;
}

#endif /* SOCKEYE_COMPAT_BPF_H */
