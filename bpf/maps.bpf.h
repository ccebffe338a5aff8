/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every map the programs share, and the small helpers that reach into
 * them: the kernel counters, a socket's struct conn, the next conn_id.
 * Sizes set here are defaults; the agent resizes some before load.
 */
#ifndef SOCKEYE_MAPS_BPF_H
#define SOCKEYE_MAPS_BPF_H

#include "conn.bpf.h"

SOCKEYE_SHARED struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct conn);
} conns SEC(".maps");

/*
 * Per-segment state of open connections, indexed by socket cookie. Reaching
 * a connection's struct conn from tcp_probe walks sk_bpf_storage, the
 * socket's bpf_local_storage and its element: on a host without PCID, where
 * every kernel entry flushes the TLB, that first lookup of an invocation
 * cost 116-139 ns against 27-31 ns for the first touch of an array slot
 * (bench/results/hook_cost_storage_timing_2026-11-23.txt). A connection
 * claims the slot its cookie maps to when it opens and gives it back when
 * the socket is destroyed (or connects again); when the slot is taken it
 * keeps the state in its storage and the fallback is counted
 * (hot_slots.bpf.h). Sized by the agent
 * (--hot-slots, a power of two; hot_slot_mask() in settings.bpf.h).
 */
SOCKEYE_SHARED struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct conn_hot);
} hot_slots SEC(".maps");

/* Sized by the agent before load (--ringbuf-size). */
SOCKEYE_SHARED struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} events SEC(".maps");

SOCKEYE_SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SOCKEYE_KC_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} kernel_counters SEC(".maps");

/* Per-CPU sequence for conn ids: (cpu << 48) | n. Atomic all the same: a
 * state change handled in a softirq can interrupt one handled in process
 * context on the same CPU (see hook_guards.bpf.h). */
SOCKEYE_SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} conn_id_seq SEC(".maps");

/* Local ports with a listener, filled during the adoption walk so that
 * accepted (passive) connections are not mistaken for backend ones. This and
 * adopt_inodes are used only at start-up and emptied after it: not
 * preallocated, they then hold no memory (preallocated, 5 MiB each). */
SOCKEYE_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u16);
	__type(value, __u8);
} listen_ports SEC(".maps");

/* Socket inodes owned by --process processes at start-up (filled by the
 * agent from /proc), so adoption honours the process filter too. */
SOCKEYE_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u8);
} adopt_inodes SEC(".maps");

/* Send-start marks for kprobe mode. kprobe programs cannot use socket
 * storage (bpf_sk_storage_get is for BTF-aware program types only), so
 * while --probe-mode kprobe is in force the lifecycle program keeps the
 * followed sockets' addresses here, the kprobe on tcp_sendmsg stamps the
 * send time, and the next hook on that socket turns it into a turn start. */
struct send_mark {
	__u64 send_start_ns;
};

SOCKEYE_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct send_mark);
} send_marks SEC(".maps");

/* In a map rather than rodata so that SIGHUP can change them without
 * reloading; read once per connect, not per packet. */
SOCKEYE_SHARED struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sockeye_filters);
} filters SEC(".maps");

/* Per CPU, the state of each guarded hook's main program (hook_guards.bpf.h). */
struct hook_guard {
	__u32 depth;
	__u32 ran_nested;
};

SOCKEYE_SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SOCKEYE_GUARD_COUNT);
	__type(key, __u32);
	__type(value, struct hook_guard);
} hook_guards SEC(".maps");

/* Records the ring buffer had no room for (struct sockeye_event_head),
 * by connection and kind, until the agent collects them on its next tick. A
 * hash map, not a second ring: a record waits here however long the ring
 * stays full, and a later record of the same kind replaces an earlier one,
 * whose cumulative totals it includes. Not preallocated: empty, it holds no
 * memory. When it is full the record is lost, and counted. */
SOCKEYE_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct sockeye_unsent_key);
	__type(value, struct sockeye_event_head);
} unsent_records SEC(".maps");

/* The frontend listeners (--frontends) by bound address and port, wildcards
 * as ::ffff:0.0.0.0 and ::, written by the agent from its listener scan and
 * kept up to date: a connection accepted on one is followed from its
 * ESTABLISHED transition (follow_accept()). Looked up once to three times
 * per accepted connection (frontend_port()). */
SOCKEYE_SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct sockeye_endpoint);
	__type(value, __u8);
} frontend_listeners SEC(".maps");

/* The same listeners' ports, a bit each: an accepted connection on another
 * port leaves after one load, before frontend_listeners' lookups, which cost
 * an unfollowed state change +70 ns on average, ~1.4 us per accepted
 * connection, in hook_cost (bench/HISTORY.md, 2026-12-07). */
SOCKEYE_SHARED struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sockeye_frontend_ports);
} frontend_ports SEC(".maps");

static __always_inline void count_kernel_by(__u32 counter, __u64 n)
{
	__u64 *value = bpf_map_lookup_elem(&kernel_counters, &counter);

	if (value)
		__sync_fetch_and_add(value, n); /* per-CPU, but runs can nest */
}

static __always_inline void count_kernel(__u32 counter)
{
	count_kernel_by(counter, 1);
}

/* Most sockets carry no BPF socket storage at all: for them one load
 * instead of a helper call, on every segment and send. */
static __always_inline bool may_be_followed(const struct sock *sk)
{
	return !(bpf_core_field_exists(sk->sk_bpf_storage) && !sk->sk_bpf_storage);
}

static __always_inline struct conn *conn_lookup(const struct sock *sk)
{
	if (!may_be_followed(sk))
		return NULL;
	return bpf_sk_storage_get(&conns, (struct sock *)sk, 0, 0);
}

static __always_inline __u64 next_conn_id(void)
{
	__u32 zero = 0;
	__u64 *seq = bpf_map_lookup_elem(&conn_id_seq, &zero);

	if (!seq)
		return 0;
	return ((__u64)bpf_get_smp_processor_id() << 48) | (__sync_fetch_and_add(seq, 1) + 1);
}

#endif /* SOCKEYE_MAPS_BPF_H */
