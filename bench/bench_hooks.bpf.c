// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Reference programs for bench/hook_cost: an empty tp_btf program on every
 * tracepoint sockeye uses (the floor any tracer pays), and counters that
 * split invocations between the bench client's sockets (followed by
 * sockeye) and the bench server's (not followed), by the server port.
 * Run time is measured per program, so the counters do not disturb the
 * numbers of the other two sets.
 *
 * One file past the usual ~400 lines on purpose: with the partial paths of
 * sockeye's programs below (--storage-timing, --cgroup-split, --ready-split)
 * it is the one skeleton hook_cost loads, whose counters and empty programs
 * every partial path is read against.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u16 server_port; /* host order */
/* The listeners of the batched (io_uring) phases; 0 when not run. */
const volatile __u16 batch_port;

enum { SIDE_CLIENT = 0, SIDE_SERVER, SIDE_OTHER, SIDES };
enum { HOOK_STATE = 0, HOOK_SEND, HOOK_SEGMENT, HOOK_DATA_READY, HOOK_CGROUP_INGRESS, HOOK_CGROUP_EGRESS, HOOKS };

__u64 invocations[HOOKS][SIDES];

/*
 * Attached first on each tracepoint (first in this file, so first in each
 * section and in the skeleton's attach order) and never measured: the first
 * program of a dispatch makes its first clock read for the run-time
 * statistics. Where that read is the first in the kernel entry (tcp_probe
 * runs before tcp_mstamp_refresh()) it costs a miss on kvm-clock's page
 * (~30-50 ns on a kvm-clock guest; bench/README.md#how-hook-cost-is-measured),
 * which the empty program paid alone when it ran first, making sockeye's "+"
 * figures on tcp_probe negative.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(warm_inet_sock_set_state) { return 0; }
SEC("tp_btf/sock_send_length")
int BPF_PROG(warm_sock_send_length) { return 0; }
SEC("tp_btf/tcp_probe")
int BPF_PROG(warm_tcp_probe) { return 0; }
SEC("tp_btf/sk_data_ready")
int BPF_PROG(warm_sk_data_ready) { return 0; }
/* The same on cgroup_skb/ingress, where hook_cost attaches the programs by
 * hand in this order (warm, empty, count) before the agent adds its own.
 * Every cgroup_skb program returns 1: 0 drops the packet. */
SEC("cgroup_skb/ingress")
int warm_cgroup_ingress(struct __sk_buff *skb) { return 1; }
SEC("cgroup_skb/egress")
int warm_cgroup_egress(struct __sk_buff *skb) { return 1; }

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(empty_inet_sock_set_state) { return 0; }
SEC("tp_btf/sock_send_length")
int BPF_PROG(empty_sock_send_length) { return 0; }
SEC("tp_btf/tcp_probe")
int BPF_PROG(empty_tcp_probe) { return 0; }
SEC("tp_btf/sk_data_ready")
int BPF_PROG(empty_sk_data_ready) { return 0; }
SEC("cgroup_skb/ingress")
int empty_cgroup_ingress(struct __sk_buff *skb) { return 1; }
SEC("cgroup_skb/egress")
int empty_cgroup_egress(struct __sk_buff *skb) { return 1; }

static __always_inline void count_ports(int hook, __u16 local, __u16 remote)
{
	int side = SIDE_OTHER;

	if (local == server_port || (batch_port && local == batch_port))
		side = SIDE_SERVER;
	else if (remote == server_port || (batch_port && remote == batch_port))
		side = SIDE_CLIENT;

	if (hook >= 0 && hook < HOOKS)
		__sync_fetch_and_add(&invocations[hook][side], 1);
}

static __always_inline void count(int hook, const struct sock *sk)
{
	count_ports(hook, BPF_CORE_READ(sk, __sk_common.skc_num),
		    __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport)));
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(count_inet_sock_set_state, const struct sock *sk) { count(HOOK_STATE, sk); return 0; }
SEC("tp_btf/sock_send_length")
int BPF_PROG(count_sock_send_length, struct sock *sk) { count(HOOK_SEND, sk); return 0; }
SEC("tp_btf/tcp_probe")
int BPF_PROG(count_tcp_probe, struct sock *sk) { count(HOOK_SEGMENT, sk); return 0; }
SEC("tp_btf/sk_data_ready")
int BPF_PROG(count_sk_data_ready, struct sock *sk) { count(HOOK_DATA_READY, sk); return 0; }

/* local_port is in host order; remote_port holds the port in network order
 * as a 32-bit big-endian word (the kernel shifts the 16-bit skc_dport up on
 * little-endian), so it converts with bpf_ntohl(), not bpf_ntohs(). */
SEC("cgroup_skb/ingress")
int count_cgroup_ingress(struct __sk_buff *skb)
{
	count_ports(HOOK_CGROUP_INGRESS, skb->local_port, bpf_ntohl(skb->remote_port));
	return 1;
}

SEC("cgroup_skb/egress")
int count_cgroup_egress(struct __sk_buff *skb)
{
	count_ports(HOOK_CGROUP_EGRESS, skb->local_port, bpf_ntohl(skb->remote_port));
	return 1;
}

/* Cost of one clock read, for reading the numbers above: the same hook
 * calling bpf_ktime_get_ns() once. */
__u64 clock_sink;
SEC("tp_btf/sock_send_length")
int BPF_PROG(clock_sock_send_length) { clock_sink += bpf_ktime_get_ns(); return 0; }

/*
 * Where a followed socket's time goes (hook_cost --storage-timing, a run of
 * its own: this program runs before sockeye's on the same tracepoint and
 * would warm the lines sockeye's then reads). One socket-storage lookup of
 * a client socket, timed inside the program: the first of the invocation,
 * then the same lookup again. The difference is what reaching the storage's
 * cache lines costs on that path, as opposed to the helper's instructions.
 * For comparison, the first touch of one slot of an array map indexed by the
 * socket's hash (the array lookup is inlined by the verifier; one line), an
 * alternative home for per-connection state.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} timing_storage SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64[8]); /* one cache line */
} timing_array SEC(".maps");

__s64 storage_first_ns, storage_again_ns, clock_pair_ns, array_first_ns;
__u64 storage_samples;

SEC("tp_btf/tcp_probe")
int BPF_PROG(time_storage_lookup, struct sock *sk)
{
	__u16 remote = __builtin_bswap16(sk->__sk_common.skc_dport);
	__u32 slot_index = sk->__sk_common.skc_hash & 65535;
	__u64 t0, t1, t2, t3, ta, tb, *first, *again, (*slot)[8];

	if (remote != server_port)
		return 0;
	ta = bpf_ktime_get_ns();
	slot = bpf_map_lookup_elem(&timing_array, &slot_index);
	if (slot)
		(*slot)[1] += 1;
	tb = bpf_ktime_get_ns();
	t0 = bpf_ktime_get_ns();
	first = bpf_sk_storage_get(&timing_storage, sk, 0, 0);
	t1 = bpf_ktime_get_ns();
	again = bpf_sk_storage_get(&timing_storage, sk, 0, 0);
	t2 = bpf_ktime_get_ns();
	t3 = bpf_ktime_get_ns();
	if (!first || !again) {
		/* First segment on this socket: create, time from the next one. */
		bpf_sk_storage_get(&timing_storage, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		return 0;
	}
	*first += 1;
	storage_first_ns += (__s64)(t1 - t0) - (__s64)(t3 - t2);
	storage_again_ns += (__s64)(t2 - t1) - (__s64)(t3 - t2);
	clock_pair_ns += (__s64)(t3 - t2);
	array_first_ns += (__s64)(tb - ta) - (__s64)(t3 - t2);
	storage_samples += 1;
	return 0;
}

/*
 * Where the status program's unfollowed time goes (hook_cost --cgroup-split
 * N, one variant per run, attached after the counter and before sockeye's
 * program, so that each variant makes the first touches sockeye's would):
 * 1 reads skb->sk, 2 also calls bpf_skc_to_tcp_sock(), 3 also loads
 * sk_bpf_storage (sockeye's whole unfollowed path), 4 reaches the same load
 * without the helper: the socket's state from struct bpf_sock (not a
 * time-wait or request socket), then its protocol and sk_bpf_storage through
 * bpf_rdonly_cast().
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

SEC("cgroup_skb/ingress")
int split_cgroup_sk(struct __sk_buff *skb)
{
	struct bpf_sock *bsk = skb->sk;

	barrier_var(bsk);
	return 1;
}

SEC("cgroup_skb/ingress")
int split_cgroup_cast(struct __sk_buff *skb)
{
	struct bpf_sock *bsk = skb->sk;
	struct tcp_sock *tp;

	if (!bsk)
		return 1;
	tp = bpf_skc_to_tcp_sock(bsk);
	barrier_var(tp);
	return 1;
}

__u64 split_followed;

SEC("cgroup_skb/ingress")
int split_cgroup_storage(struct __sk_buff *skb)
{
	struct bpf_sock *bsk = skb->sk;
	struct tcp_sock *tp;

	if (!bsk)
		return 1;
	tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return 1;
	if (((struct sock *)tp)->sk_bpf_storage)
		split_followed++;
	return 1;
}

SEC("cgroup_skb/ingress")
int split_cgroup_rdonly(struct __sk_buff *skb)
{
	struct bpf_sock *bsk = skb->sk;
	struct sock *sk;

	/* struct bpf_sock's protocol needs a full socket (another helper);
	 * its state does not. */
	if (!bsk || bsk->state == BPF_TCP_TIME_WAIT || bsk->state == BPF_TCP_NEW_SYN_RECV)
		return 1;
	sk = bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct sock));
	if (sk->sk_protocol != IPPROTO_TCP)
		return 1;
	if (sk->sk_bpf_storage)
		split_followed++;
	return 1;
}

/* 5: variant 3, then for a socket with storage (sockeye's followed client
 * sockets) the payload reads the status program makes for a response's
 * first segment: the IP header's first byte, 16 bytes of TCP header, the
 * first 16 bytes of payload. Its followed figure is read against sockeye's. */
__u64 split_sink;

SEC("cgroup_skb/ingress")
int split_cgroup_loads(struct __sk_buff *skb)
{
	struct bpf_sock *bsk = skb->sk;
	__u8 first, th[16], line[16];
	struct tcp_sock *tp;
	__u32 off;

	if (!bsk)
		return 1;
	tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp || !((struct sock *)tp)->sk_bpf_storage)
		return 1;
	if (bpf_skb_load_bytes(skb, 0, &first, 1))
		return 1;
	off = (first & 0xf) * 4;
	if (bpf_skb_load_bytes(skb, off, th, sizeof(th)))
		return 1;
	off += (th[12] >> 4) * 4;
	if (skb->len < off + sizeof(line) || bpf_skb_load_bytes(skb, off, line, sizeof(line)))
		return 1;
	split_sink += line[9] + tp->rcv_nxt;
	return 1;
}

/* 6: variant 5 without the payload read: what the two header reads and
 * rcv_nxt cost, so that 5 minus 6 is the payload's read. */
SEC("cgroup_skb/ingress")
int split_cgroup_headers(struct __sk_buff *skb)
{
	struct bpf_sock *bsk = skb->sk;
	__u8 first, th[16];
	struct tcp_sock *tp;

	if (!bsk)
		return 1;
	tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp || !((struct sock *)tp)->sk_bpf_storage)
		return 1;
	if (bpf_skb_load_bytes(skb, 0, &first, 1))
		return 1;
	if (bpf_skb_load_bytes(skb, (first & 0xf) * 4, th, sizeof(th)))
		return 1;
	split_sink += th[12] + tp->rcv_nxt;
	return 1;
}

/* 7: the same work as 5 with one helper call instead of four: the socket
 * as in 4, the IPv4 and TCP headers by direct packet access (tcp_v4_rcv()
 * pulls them into the linear part before the filter runs), only the payload,
 * which need not be linear, with bpf_skb_load_bytes(). */
SEC("cgroup_skb/ingress")
int split_cgroup_direct(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct bpf_sock *bsk = skb->sk;
	struct tcp_sock *tp;
	struct tcphdr *th;
	struct iphdr *ip;
	struct sock *sk;
	__u8 line[16];
	__u32 off;

	if (!bsk || bsk->state == BPF_TCP_TIME_WAIT || bsk->state == BPF_TCP_NEW_SYN_RECV)
		return 1;
	sk = bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct sock));
	if (sk->sk_protocol != IPPROTO_TCP || !sk->sk_bpf_storage)
		return 1;
	ip = data;
	if ((void *)(ip + 1) > data_end || ip->version != 4)
		return 1;
	off = ip->ihl * 4;
	th = data + off;
	if ((void *)(th + 1) > data_end)
		return 1;
	off += th->doff * 4;
	if (skb->len < off + sizeof(line) || bpf_skb_load_bytes(skb, off, line, sizeof(line)))
		return 1;
	tp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
	split_sink += line[9] + tp->rcv_nxt;
	return 1;
}

/*
 * Where the frontend side's time goes: partial paths of the egress program
 * (hook_cost --cgroup-split 8-12, cgroup_skb/egress) and of sk_data_ready on
 * a frontend socket (--ready-split 1-3), each a program of its own running
 * before sockeye's, read against the frontend phase's server sockets. They
 * test the socket as the bpf_rdonly_cast() build does. A hot slot is
 * mimicked by a slot of the same size in an array of their own, indexed by
 * the socket's cookie: a line sockeye's program does not touch, so it is
 * as cold as sockeye's own slot.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64[27]); /* sizeof(struct conn_hot) */
} split_slots SEC(".maps");

/* Never drained: 1,500 records of 3 rounds fit many times over. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} split_ring SEC(".maps");

struct split_record {
	__u64 words[34]; /* sizeof(struct sockeye_event) */
};

static __always_inline const struct sock *split_followed_sock(struct __sk_buff *skb)
{
	struct bpf_sock *bsk = skb->sk;
	const struct sock *sk;

	if (!bsk || bsk->state == BPF_TCP_TIME_WAIT || bsk->state == BPF_TCP_NEW_SYN_RECV)
		return NULL;
	sk = bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct sock));
	if (!sk->sk_bpf_storage || sk->sk_protocol != IPPROTO_TCP)
		return NULL;
	return sk;
}

static __always_inline __u64 *split_slot(__u64 cookie)
{
	__u32 idx = cookie & 8191;
	__u64 *slot;

	if (!cookie)
		return NULL;
	slot = bpf_map_lookup_elem(&split_slots, &idx);
	if (!slot)
		return NULL;
	if (slot[0] != cookie)
		slot[0] = cookie;
	return slot;
}

/* 8: the socket test, the egress program's whole unfollowed path. */
SEC("cgroup_skb/egress")
int split_egress_storage(struct __sk_buff *skb)
{
	if (split_followed_sock(skb))
		split_followed++;
	return 1;
}

/* 9: and the followed socket's slot, its phase read. */
SEC("cgroup_skb/egress")
int split_egress_slot(struct __sk_buff *skb)
{
	const struct sock *sk = split_followed_sock(skb);
	__u64 *slot;

	if (!sk)
		return 1;
	slot = split_slot(sk->__sk_common.skc_cookie.counter);
	if (slot)
		split_sink += slot[3] & 0xff;
	return 1;
}

/* The IPv4 and TCP headers in place, as read_segment(): the payload's
 * offset and length, 0 when there is none. */
static __always_inline __u32 split_payload(struct __sk_buff *skb, __u32 *seq, __u32 *len)
{
	const __u8 *data = (const __u8 *)(long)skb->data;
	const __u8 *data_end = (const __u8 *)(long)skb->data_end;
	const __u8 *th;
	__u32 off;

	if (data + 1 > data_end || (data[0] >> 4) != 4)
		return 0;
	off = (data[0] & 0xf) * 4;
	th = data + off;
	if (th + 16 > data_end)
		return 0;
	*seq = ((__u32)th[4] << 24) | ((__u32)th[5] << 16) | ((__u32)th[6] << 8) | th[7];
	off += (th[12] >> 4) * 4;
	*len = skb->len > off ? skb->len - off : 0;
	return off;
}

/* 10: and the headers, the sequence number compared with the slot's. */
SEC("cgroup_skb/egress")
int split_egress_headers(struct __sk_buff *skb)
{
	const struct sock *sk = split_followed_sock(skb);
	__u32 seq = 0, len = 0;
	__u64 *slot;

	if (!sk)
		return 1;
	slot = split_slot(sk->__sk_common.skc_cookie.counter);
	if (!slot || !split_payload(skb, &seq, &len) || !len)
		return 1;
	if ((__s32)(seq - (__u32)slot[2]) >= 0)
		slot[2] = seq + len;
	return 1;
}

/* 11: and the status line, 12 bytes of payload with bpf_skb_load_bytes(),
 * as status_at() reads it; split_followed counts the packets whose line was
 * in the linear part. */
SEC("cgroup_skb/egress")
int split_egress_payload(struct __sk_buff *skb)
{
	const struct sock *sk = split_followed_sock(skb);
	__u8 line[12] = {};
	__u32 seq = 0, len = 0, off;
	__u64 *slot;

	if (!sk)
		return 1;
	slot = split_slot(sk->__sk_common.skc_cookie.counter);
	if (!slot)
		return 1;
	off = split_payload(skb, &seq, &len);
	if (!off || len < sizeof(line))
		return 1;
	if ((__s32)(seq - (__u32)slot[2]) < 0)
		return 1;
	slot[2] = seq + len;
	/* Counted: whether the status line could have been read in place. */
	if ((const __u8 *)(long)skb->data + off + sizeof(line) <= (const __u8 *)(long)skb->data_end)
		split_followed++;
	if (bpf_skb_load_bytes(skb, off, line, sizeof(line)))
		return 1;
	split_sink += line[9];
	return 1;
}

/* 12: and the turn: the tcp_sock's clock and RTT, a slot written, and every
 * 16th one record as emit_turns() writes it (reserve, ring query, submit). */
SEC("cgroup_skb/egress")
int split_egress_record(struct __sk_buff *skb)
{
	const struct sock *sk = split_followed_sock(skb);
	const struct tcp_sock *tp;
	struct split_record *r;
	__u8 line[12] = {};
	__u32 seq = 0, len = 0, off;
	__u64 *slot, head;

	if (!sk)
		return 1;
	slot = split_slot(sk->__sk_common.skc_cookie.counter);
	if (!slot)
		return 1;
	off = split_payload(skb, &seq, &len);
	if (!off || len < sizeof(line))
		return 1;
	if ((__s32)(seq - (__u32)slot[2]) < 0)
		return 1;
	slot[2] = seq + len;
	if (bpf_skb_load_bytes(skb, off, line, sizeof(line)))
		return 1;
	tp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
	head = slot[8];
	slot[11 + (head & 15)] = (tp->tcp_clock_cache - slot[6]) / 1000 + (tp->srtt_us >> 3) + line[9];
	slot[8] = head + 1;
	if ((head & 15) != 15)
		return 1;
	r = bpf_ringbuf_reserve(&split_ring, sizeof(*r), 0);
	if (!r)
		return 1;
	for (int i = 0; i < 16; i++)
		r->words[18 + i] = slot[11 + i];
	r->words[0] = slot[10];
	bpf_ringbuf_submit(r, bpf_ringbuf_query(&split_ring, BPF_RB_AVAIL_DATA) > (1 << 20)
				      ? BPF_RB_FORCE_WAKEUP
				      : BPF_RB_NO_WAKEUP);
	return 1;
}

/* --ready-split 1: sk_data_ready's socket test. */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(split_ready_storage, struct sock *sk)
{
	if (sk->sk_bpf_storage)
		split_followed++;
	return 0;
}

/* 2: and the followed socket's slot. */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(split_ready_slot, struct sock *sk)
{
	__u64 *slot;

	if (!sk->sk_bpf_storage)
		return 0;
	slot = split_slot(sk->__sk_common.skc_cookie.counter);
	if (slot)
		split_sink += slot[3] & 0xff;
	return 0;
}

/* 3: and frontend_data_ready()'s work: bpf_skc_to_tcp_sock(), rcv_nxt,
 * the socket's flags, write_seq and tcp_clock_cache into the slot. */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(split_ready_tcp, struct sock *sk)
{
	struct tcp_sock *tp;
	__u64 *slot;
	__u32 rcv_nxt;

	if (!sk->sk_bpf_storage)
		return 0;
	slot = split_slot(sk->__sk_common.skc_cookie.counter);
	if (!slot)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	rcv_nxt = tp->rcv_nxt;
	if (rcv_nxt == (__u32)slot[1] || (sk->__sk_common.skc_flags & 1))
		return 0;
	slot[1] = rcv_nxt;
	slot[2] = tp->write_seq;
	slot[6] = tp->tcp_clock_cache;
	return 0;
}
