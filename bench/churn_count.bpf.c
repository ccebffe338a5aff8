// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * For bench/churn: counts the live entries of one BPF_MAP_TYPE_SK_STORAGE
 * map (the agent's per-connection `conns` storage). bpftool cannot dump
 * socket storage (the map has no get_next_key) and its memlock figure leaves
 * the elements out, so the bench walks the map with this iterator, attached
 * to the agent's map by id, and reads the count from .bss.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

__u64 entries;

SEC("iter/bpf_sk_storage_map")
int count_entries(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	/* The last call of a walk has no socket. */
	if (ctx->sk && ctx->value)
		entries++;
	return 0;
}
