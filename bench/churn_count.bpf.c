// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * For bench/churn: counts the live entries of one BPF_MAP_TYPE_SK_STORAGE
 * map (the agent's per-connection `conns` storage). bpftool cannot dump
 * socket storage (the map has no get_next_key) and its memlock figure leaves
 * the elements out, so the bench walks the map with this iterator, attached
 * to the agent's map by id, and reads the count from .bss. Kernels that refuse
 * map-element iterators (some 6.18 builds) get count_hashed_entries
 * instead: every socket in TCP's hash tables, looked up in the agent's map
 * (reused by fd), which misses sockets already unhashed but not yet freed.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

__u64 entries;

/* Replaced by the agent's map (bpf_map__reuse_fd) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} conns SEC(".maps");

SEC("iter/bpf_sk_storage_map")
int count_entries(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	/* The last call of a walk has no socket. */
	if (ctx->sk && ctx->value)
		entries++;
	return 0;
}

SEC("iter/tcp")
int count_hashed_entries(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (tp && bpf_sk_storage_get(&conns, tp, 0, 0))
		entries++;
	return 0;
}
