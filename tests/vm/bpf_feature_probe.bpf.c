// SPDX-License-Identifier: GPL-2.0
// Minimal BPF programs used by bpf_feature_probe to test which attach types a
// kernel accepts. Each program only bumps a counter so that the user-space side
// can also check that the hook actually fired.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

// Indexes must match enum feature_idx in bpf_feature_probe.c.
enum {
	F_FENTRY = 0,
	F_FEXIT,
	F_KPROBE,
	F_KRETPROBE,
	F_TP_SET_STATE,
	F_TP_SEND_LEN,
	F_TP_TCP_PROBE,
	F_RINGBUF,
	F_SK_STORAGE,
	F_ITER_TCP,
	F_SOCKOPS,
	F_SOCKOPS_RTT,
	F_CONNECT4,
	F_BTF_DIRECT_READ,
	F_PROBE_READ_KERNEL,
	F_FENTRY_DATA_READY,
	F_FENTRY_DEF_READABLE,
	F_MAX = 17,
};

__u64 hits[F_MAX] = {};

static __always_inline void bump(int i)
{
	__sync_fetch_and_add(&hits[i], 1);
}

SEC("fentry/tcp_sendmsg")
int BPF_PROG(probe_fentry, struct sock *sk, struct msghdr *msg, size_t size)
{
	bump(F_FENTRY);
	return 0;
}

/* Called for every received data segment (and FIN) in tcp_input.c; a hit
 * count below the traffic's data segments would mean GCC inlined calls. */
SEC("fentry/tcp_data_ready")
int BPF_PROG(probe_fentry_data_ready, struct sock *sk)
{
	bump(F_FENTRY_DATA_READY);
	return 0;
}

/* The socket's default data-ready callback, where sock:sk_data_ready fires
 * from 6.3 on. Only ever called through sk->sk_data_ready, so never inlined;
 * fires for unix and UDP sockets too. */
SEC("fentry/sock_def_readable")
int BPF_PROG(probe_fentry_def_readable, struct sock *sk)
{
	bump(F_FENTRY_DEF_READABLE);
	return 0;
}

SEC("fexit/tcp_sendmsg")
int BPF_PROG(probe_fexit, struct sock *sk, struct msghdr *msg, size_t size, int ret)
{
	bump(F_FEXIT);
	return 0;
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(probe_kprobe, struct sock *sk)
{
	bump(F_KPROBE);
	return 0;
}

SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(probe_kretprobe, int ret)
{
	bump(F_KRETPROBE);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(probe_tp_set_state, struct sock *sk, int oldstate, int newstate)
{
	bump(F_TP_SET_STATE);
	return 0;
}

// Added in Linux 6.3: expected to fail to load on 6.1.
SEC("tp_btf/sock_send_length")
int BPF_PROG(probe_tp_send_len, struct sock *sk, int ret, int flags)
{
	bump(F_TP_SEND_LEN);
	return 0;
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(probe_tp_tcp_probe, struct sock *sk, struct sk_buff *skb)
{
	bump(F_TP_TCP_PROBE);
	return 0;
}

// ring buffer: output one record per state change.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(probe_ringbuf, struct sock *sk, int oldstate, int newstate)
{
	__u32 v = newstate;

	if (bpf_ringbuf_output(&rb, &v, sizeof(v), 0) == 0)
		bump(F_RINGBUF);
	return 0;
}

// socket local storage, created from a tp_btf program.
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} sk_store SEC(".maps");

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(probe_sk_storage, struct sock *sk, int oldstate, int newstate)
{
	__u64 *v = bpf_sk_storage_get(&sk_store, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (v) {
		(*v)++;
		bump(F_SK_STORAGE);
	}
	return 0;
}

SEC("iter/tcp")
int probe_iter_tcp(struct bpf_iter__tcp *ctx)
{
	if (ctx->sk_common)
		bump(F_ITER_TCP);
	return 0;
}

SEC("sockops")
int probe_sockops(struct bpf_sock_ops *skops)
{
	bump(F_SOCKOPS);
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						 BPF_SOCK_OPS_RTT_CB_FLAG);
		break;
	case BPF_SOCK_OPS_RTT_CB:
		bump(F_SOCKOPS_RTT);
		break;
	}
	return 1;
}

SEC("cgroup/connect4")
int probe_connect4(struct bpf_sock_addr *ctx)
{
	bump(F_CONNECT4);
	return 1; // allow
}

// Reading kernel memory: direct (BTF pointer, verified by the verifier) vs.
// through bpf_probe_read_kernel() (what BPF_CORE_READ expands to). The helper
// is refused under lockdown=confidentiality (LOCKDOWN_BPF_READ_KERNEL); direct
// BTF reads are not.
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(probe_btf_direct_read, struct sock *sk, int oldstate, int newstate)
{
	__u16 family = sk->__sk_common.skc_family;

	if (family == 2 || family == 10)
		bump(F_BTF_DIRECT_READ);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(probe_probe_read_kernel, struct sock *sk, int oldstate, int newstate)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family == 2 || family == 10)
		bump(F_PROBE_READ_KERNEL);
	return 0;
}
