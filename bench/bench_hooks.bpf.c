// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Reference programs for bench/hook_cost: an empty tp_btf program on every
 * tracepoint sockeye uses (the floor any tracer pays), and counters that
 * split invocations between the bench client's sockets (followed by
 * sockeye) and the bench server's (not followed), by the server port.
 * Run time is measured per program, so the counters do not disturb the
 * numbers of the other two sets.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u16 server_port; /* host order */

enum { SIDE_CLIENT = 0, SIDE_SERVER, SIDE_OTHER, SIDES };
enum { HOOK_STATE = 0, HOOK_SEND, HOOK_SEGMENT, HOOKS };

__u64 invocations[HOOKS][SIDES];

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(empty_inet_sock_set_state) { return 0; }
SEC("tp_btf/sock_send_length")
int BPF_PROG(empty_sock_send_length) { return 0; }
SEC("tp_btf/tcp_probe")
int BPF_PROG(empty_tcp_probe) { return 0; }

static __always_inline void count(int hook, const struct sock *sk)
{
	__u16 local = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 remote = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	int side = local == server_port ? SIDE_SERVER : remote == server_port ? SIDE_CLIENT : SIDE_OTHER;

	if (hook >= 0 && hook < HOOKS)
		__sync_fetch_and_add(&invocations[hook][side], 1);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(count_inet_sock_set_state, const struct sock *sk) { count(HOOK_STATE, sk); return 0; }
SEC("tp_btf/sock_send_length")
int BPF_PROG(count_sock_send_length, struct sock *sk) { count(HOOK_SEND, sk); return 0; }
SEC("tp_btf/tcp_probe")
int BPF_PROG(count_tcp_probe, struct sock *sk) { count(HOOK_SEGMENT, sk); return 0; }

/* Cost of one clock read, for reading the numbers above: the same hook
 * calling bpf_ktime_get_ns() once. */
__u64 clock_sink;
SEC("tp_btf/sock_send_length")
int BPF_PROG(clock_sock_send_length) { clock_sink += bpf_ktime_get_ns(); return 0; }
