/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which connects are followed: the backend endpoint of a socket and the
 * agent's filters (the `filters` map, struct sockeye_filters).
 */
#ifndef SOCKEYE_FILTERS_BPF_H
#define SOCKEYE_FILTERS_BPF_H

#include "maps.bpf.h"
#include "settings.bpf.h"

/* Which end of a socket read_endpoint() reads: the peer (a backend
 * connection's backend), or the socket's own address and port (a frontend
 * connection's label is its listener's, which the agent finds from it). */
enum endpoint_end {
	PEER_END,
	LOCAL_END,
};

/*
 * Field reads here and in the other headers are plain loads through
 * BTF-typed pointers (tp_btf, fentry and iterator arguments are trusted by
 * the verifier, which turns them into fault-safe loads), relocated by
 * CO-RE. BPF_CORE_READ would make each one a bpf_probe_read_kernel() call,
 * several times the cost on the per-segment path.
 */
static __always_inline void read_endpoint(const struct sock *sk, struct sockeye_endpoint *ep,
					  enum endpoint_end end)
{
	const bool local = end == LOCAL_END;
	__u32 *words = (__u32 *)ep->addr;

	__builtin_memset(ep, 0, sizeof(*ep));
	ep->port = local ? sk->__sk_common.skc_num : __builtin_bswap16(sk->__sk_common.skc_dport);
	if (sk->__sk_common.skc_family == AF_INET6) {
		words[0] = local ? sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[0]
				 : sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[0];
		words[1] = local ? sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[1]
				 : sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[1];
		words[2] = local ? sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[2]
				 : sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[2];
		words[3] = local ? sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[3]
				 : sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3];
	} else {
		words[2] = __builtin_bswap32(0x0000ffff);
		words[3] = local ? sk->__sk_common.skc_rcv_saddr : sk->__sk_common.skc_daddr;
	}
}

/* Whether a frontend listener has the socket's local port: one load of the
 * frontend_ports bitmap, for every accepted connection on the host. */
static __always_inline bool frontend_port_listed(const struct sock *sk)
{
	const struct sockeye_frontend_ports *ports;
	__u16 port = sk->__sk_common.skc_num;
	__u32 zero = 0;

	if (!follow_frontends)
		return false;
	ports = bpf_map_lookup_elem(&frontend_ports, &zero);
	return ports && (ports->bits[(port >> 3) & (sizeof(ports->bits) - 1)] & (1U << (port & 7)));
}

/* An accepted socket of a frontend listener, in the network namespace the
 * agent took the listeners from: the listener bound to its local address,
 * or the wildcard one on its port (0.0.0.0 for IPv4; [::], dual-stack,
 * for IPv6 and v4-mapped addresses). Ports alone would not do: two
 * listeners may share a port on different addresses, one of them excluded. */
static __always_inline bool frontend_port(const struct sock *sk)
{
	struct sockeye_endpoint ep;
	__u32 *words = (__u32 *)ep.addr;
	const struct net *net;
	bool v4;

	if (!frontend_port_listed(sk))
		return false;
	net = sk->__sk_common.skc_net.net;
	if (frontend_netns_inum && (!net || net->ns.inum != frontend_netns_inum))
		return false;
	read_endpoint(sk, &ep, LOCAL_END);
	if (bpf_map_lookup_elem(&frontend_listeners, &ep))
		return true;
	v4 = sk->__sk_common.skc_family == AF_INET;
	words[0] = words[1] = words[2] = words[3] = 0;
	if (v4)
		words[2] = __builtin_bswap32(0x0000ffff);
	return bpf_map_lookup_elem(&frontend_listeners, &ep) != NULL;
}

static __always_inline const struct sockeye_filters *current_filters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&filters, &zero);
}

static __always_inline bool cidr_matches(const struct sockeye_cidr_filter *f,
					 const struct sockeye_endpoint *ep)
{
	const __u32 *a = (const __u32 *)ep->addr;

	if (f->port && f->port != ep->port)
		return false;
	return (a[0] & f->mask[0]) == f->addr[0] && (a[1] & f->mask[1]) == f->addr[1] &&
	       (a[2] & f->mask[2]) == f->addr[2] && (a[3] & f->mask[3]) == f->addr[3];
}

/* Includes first (any must match when there are some), then excludes. */
static __always_inline bool backend_wanted(const struct sockeye_filters *f,
					   const struct sockeye_endpoint *ep)
{
	bool included = f->include_count == 0;

	for (__u32 i = 0; i < SOCKEYE_MAX_CIDR_FILTERS; i++) {
		if (i >= f->cidr_count)
			break;
		if (!cidr_matches(&f->cidrs[i], ep))
			continue;
		if (f->cidrs[i].exclude)
			return false;
		included = true;
	}
	return included;
}

/* Only called when there are process filters (comm_count > 0). */
static __always_inline bool comm_wanted(const struct sockeye_filters *f,
					const char comm[SOCKEYE_COMM_LEN])
{
	const __u64 *c = (const __u64 *)comm;

	for (__u32 i = 0; i < SOCKEYE_MAX_COMM_FILTERS; i++) {
		const __u64 *name = (const __u64 *)f->comms[i];

		if (i >= f->comm_count)
			break;
		if (name[0] == c[0] && name[1] == c[1])
			return true;
	}
	return false;
}

#endif /* SOCKEYE_FILTERS_BPF_H */
