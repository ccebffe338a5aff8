/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * State shared by sockeye's probe families: the per-socket connection
 * record, the maps, the load-time filters and the helpers that read a
 * connection's totals from the kernel's own TCP sequence numbers.
 *
 * Each family is its own *.bpf.c; the objects are statically linked into
 * one (bpftool gen object), so the maps and settings below are defined in
 * conn_lifecycle.bpf.c and declared extern everywhere else.
 */
#ifndef SOCKEYE_BPF_H
#define SOCKEYE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "compat.bpf.h"
#include "sockeye_abi.h"

#ifdef SOCKEYE_DEFINE_SHARED
#define SOCKEYE_SHARED
#else
#define SOCKEYE_SHARED extern
#endif

enum conn_lifecycle {
	CONN_CONNECTING = 1, /* SYN sent */
	CONN_OPEN,           /* established or adopted */
	CONN_CLOSED,
};

/* Request/response turns: a turn starts at the first send after a receive
 * phase (or the first send on the connection) and ends at its first
 * response byte. */
enum conn_phase {
	PHASE_IDLE = 0,
	PHASE_AWAITING_RESPONSE,
	PHASE_RECEIVING,
};

#define CLOSED_BY_UNKNOWN 0xff

/* What the per-segment hook (and, when attached, the send hook) reads and
 * writes for one open connection. It lives in a hot_slots entry the
 * connection owns, or, when its slot is taken, in its socket storage
 * (struct conn.hot): conn_hot() says which. */
struct conn_hot {
	/* Socket cookie of the connection this state belongs to; in a slot, 0
	 * when free. The sweep re-reads it after reading the rest. */
	__u64 owner;
	__u64 turn_start_ns;
	/* Completed turns not yet handed to user space: turns[n % BATCH] for
	 * turns_flushed <= n < turns_head. Only the receive hook (sk_data_ready,
	 * its fentry twin on sock_def_readable, or tcp_probe) appends, under the
	 * socket lock, so turns_head has one writer at a time; turns_flushed
	 * moves wherever a record is written (the receive hook, the state
	 * changes, destroy, and the sweep on another CPU), always by compare-and-swap
	 * (take_turns()). In a slot both keep counting across owners, so a
	 * compare-and-swap by a CPU still looking at the previous owner fails
	 * instead of taking the next owner's turns. 64-bit: clang compiles
	 * 32-bit compare-and-swap only for -mcpu=v3. */
	__u64 turns_head;
	__u64 turns_flushed;
	/* The connection's conn_id, so that a batch record needs nothing else
	 * (emit_turns()). */
	__u64 conn_id;
	__u32 seen_write_seq; /* write_seq when send progress was last seen */
	__u32 seen_rcv_nxt;   /* rcv_nxt at the last sk_data_ready (on_data_ready()) */
	__u32 request_seq;    /* write_seq where the waiting turn's request began */
	__u32 requests;
	__u32 phase;
	__u8 tx_final; /* FIN queued: conn.final_write_seq holds the send total */
	struct sockeye_turn turns[SOCKEYE_TURN_BATCH] __attribute__((aligned(64)));
};

/* One per followed socket, in BPF_MAP_TYPE_SK_STORAGE: freed with the
 * socket, so nothing here can leak when an event is lost. */
struct conn {
	/* Used unless the hot_slots entry cookie maps to has owner == cookie. */
	struct conn_hot hot;
	__u64 cookie; /* the socket's cookie, set when it opened; hot.owner too */
	__u8 lifecycle;
	__u8 closed_by;
	__u8 adopted;
	__u8 opened;	     /* base sequence numbers are valid */
	__u8 close_reported; /* the CLOSED record has gone out */
	__u8 close_final;    /* ... marked SOCKEYE_EVF_FINAL */
	__u64 conn_id;
	__u64 connect_start_ns; /* SYN_SENT; adoption time for adopted ones */
	/* Byte totals are (seq - base) read from the kernel, extended past
	 * 4 GiB by the *_high words (see read_totals()). */
	__u64 sent_high;
	__u64 received_high;
	/* Totals in the last record user space got (any kind): the sweep and
	 * the destroy hook only report a connection that moved since. */
	__u64 reported_sent;
	__u64 reported_received;
	struct sockeye_endpoint backend;
	__u32 base_write_seq;
	__u32 base_copied_seq;
	__u32 last_sent32;
	__u32 last_received32;
	__u32 final_write_seq; /* write_seq just before our FIN was queued */
	__u32 resets_sent;
	__u32 resets_received;
	__u32 reported_requests;
	__u32 reported_retransmits;
};

/* --- maps ---------------------------------------------------------------- */

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
 * (bench/README.md, hook cost). A connection claims the slot its cookie maps
 * to when it opens and gives it back when the socket is destroyed (or
 * connects again); when the slot is taken it keeps the state in its storage
 * and the fallback is counted. Sized by the agent (--hot-slots, a power of
 * two; hot_slot_mask() below).
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
 * context on the same CPU (see hook_guards). */
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

/* --- load-time settings ------------------------------------------------- */
/*
 * Settings on the per-segment path are immediates in the instruction stream,
 * not `const volatile` rodata: the verifier knows a rodata value but the JIT
 * still loads it, from the .rodata map's own page, and on a host without PCID
 * (the TLB is flushed at every kernel entry) that first touch cost a followed
 * sk_data_ready ~30 ns of its ~180 (bench/README.md, hook cost). The marker
 * is replaced by the agent before load (agent/load_time_immediates.h); every
 * use must be inlined into a program (no BPF subprograms), which a unit test
 * checks on the built object and the agent on the loaded programs.
 */
#define SOCKEYE_IMM(id)                                                              \
	({                                                                           \
		__u64 __imm;                                                         \
		asm volatile("%0 = %1 ll"                                            \
			     : "=r"(__imm)                                           \
			     : "i"(((__u64)SOCKEYE_IMM_MARKER << 32) | (id)));       \
		__imm;                                                               \
	})

static __always_inline bool hot_slots_enabled(void)
{
	return SOCKEYE_IMM(SOCKEYE_IMM_HOT_SLOTS_ENABLED) != 0;
}

static __always_inline __u32 hot_slot_mask(void)
{
	return (__u32)SOCKEYE_IMM(SOCKEYE_IMM_HOT_SLOT_MASK);
}

static __always_inline bool send_marks_enabled(void)
{
	return SOCKEYE_IMM(SOCKEYE_IMM_SEND_MARKS_ENABLED) != 0;
}

static __always_inline __u64 ringbuf_wakeup_bytes(void)
{
	return SOCKEYE_IMM(SOCKEYE_IMM_RINGBUF_WAKEUP_BYTES);
}

/* Settings read only per connection or per sweep stay rodata. The agent's
 * network namespace (its inode number) when the sweep walks iter/tcp, which
 * sees only that namespace; 0 when it walks the socket storage, which sees
 * every followed socket. */
SOCKEYE_SHARED const volatile __u32 sweep_netns_inum;

/* Written by the agent before each sweep: emit every open connection, not
 * only those whose totals changed. */
SOCKEYE_SHARED volatile __u32 sweep_all;

/* --- helpers ------------------------------------------------------------- */

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

/*
 * Nested runs. A tracing program that is already running on a CPU is not run
 * again there: the kernel skips the inner run and counts it in the program's
 * recursion_misses (bpf_trace_run*() and the fentry trampoline test
 * prog->active). An interrupt arriving while inet_sock_set_state is handled
 * in process context (connect(), close()) runs its softirq right there, and
 * the SYN-ACKs, FINs and resets of other connections in it change their
 * states: with receive packet steering (or a NIC's interrupts) on the
 * proxy's CPU that skipped ~1,000 of 40,000 connections' state changes
 * here (NestedStateChangesAreAllCounted in tests/privileged), leaving
 * connections open that were never seen to open. So each guarded hook has
 * two programs on its tracepoint: the main one, which marks the CPU while
 * it runs, and a standby, which does the same work only when it finds that
 * mark, i.e. only for the runs the kernel skipped. Kernels without the
 * check for raw tracepoints run the main program nested instead; it then
 * leaves ran_nested for the standby, which stands down -- which needs the
 * standby to run after the main program: the agent attaches it second, and
 * a tracepoint calls its probes in the order they were registered. Only
 * runs for sockets that may be followed (and connects) mark the CPU:
 * marking the runs that leave after one load cost every state change
 * +14 ns (bench/README.md). A run skipped while the CPU is not marked (in
 * such a run, or at the edges of a marked one) is not recovered; the
 * kernel counts it in recursion_misses (where it counts them), which the
 * agent exports, and a followed connection's missed ESTABLISHED or CLOSE
 * is reported when a later transition or the socket's destruction shows
 * it (SOCKEYE_SEEN_LATE).
 */
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

static __always_inline struct hook_guard *guard_enter(__u32 hook)
{
	struct hook_guard *g = bpf_map_lookup_elem(&hook_guards, &hook);

	if (g) {
		if (g->depth)
			g->ran_nested = 1;
		g->depth++;
	}
	return g;
}

static __always_inline void guard_leave(struct hook_guard *g)
{
	if (g)
		g->depth--;
}

/* In a standby program: true when this run is one the kernel skipped in the
 * main program, which the standby must then do. */
static __always_inline bool standby_needed(__u32 hook)
{
	struct hook_guard *g = bpf_map_lookup_elem(&hook_guards, &hook);

	if (!g || !g->depth)
		return false;
	if (g->ran_nested) {
		g->ran_nested = 0;
		return false;
	}
	count_kernel(SOCKEYE_KC_NESTED_RECOVERED + hook);
	return true;
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

/*
 * Field reads below are plain loads through BTF-typed pointers (tp_btf,
 * fentry and iterator arguments are trusted by the verifier, which turns
 * them into fault-safe loads), relocated by CO-RE. BPF_CORE_READ would
 * make each one a bpf_probe_read_kernel() call, several times the cost on
 * the per-segment path.
 */
static __always_inline void read_endpoint(const struct sock *sk, struct sockeye_endpoint *ep)
{
	__u32 *words = (__u32 *)ep->addr;

	__builtin_memset(ep, 0, sizeof(*ep));
	ep->port = __builtin_bswap16(sk->__sk_common.skc_dport);
	if (sk->__sk_common.skc_family == AF_INET6) {
		words[0] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[0];
		words[1] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[1];
		words[2] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[2];
		words[3] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3];
	} else {
		words[2] = __builtin_bswap32(0x0000ffff);
		words[3] = sk->__sk_common.skc_daddr;
	}
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

/*
 * Totals from the kernel's TCP state rather than from syscall return
 * values, so sendfile/splice/io_uring are exact too and MSG_PEEK never
 * counts: write_seq advances when data is queued by any path, copied_seq
 * when the application consumes it (tcp_recvmsg, tcp_read_sock/splice).
 * Two sequence numbers are not payload and are taken out: our FIN (frozen
 * in final_write_seq before tcp_send_fin() adds it) and the peer's FIN once
 * the application has read it (tcp_recvmsg's found_fin_ok advances
 * copied_seq by one; SOCK_DONE is set by tcp_fin()).
 *
 * The 32-bit differences are extended past 4 GiB by watching for wrap.
 * Two CPUs sampling the same socket in the same instant across a 4 GiB
 * boundary could both see the wrap; that window is accepted.
 */
static __always_inline void read_totals(const struct sock *sk, const struct tcp_sock *tp,
					struct conn *c, const struct conn_hot *h,
					struct sockeye_conn_totals *t)
{
	/* Not "tx_final ? c->... : tp->...": clang folds that into one load from
	 * a selected pointer, which the verifier refuses (map value vs kernel
	 * object in the same instruction); the empty asm pins the kernel load. */
	__u32 write_seq = tp->write_seq;
	__u32 retransmits = tp->total_retrans;
	__u32 copied_seq = tp->copied_seq;
	__u32 rcv_nxt = tp->rcv_nxt;
	unsigned long sk_flags = sk->__sk_common.skc_flags;
	__u32 sent32, received32;

	asm volatile("" : "+r"(write_seq));
	asm volatile("" : "+r"(retransmits));
	if (h->tx_final)
		write_seq = c->final_write_seq;

	/* tcp_disconnect() (an abortive close: SO_LINGER 0, as HAProxy closes
	 * server connections) moves the socket to CLOSE and then advances
	 * write_seq by a window and sets copied_seq = rcv_nxt, so sequence
	 * numbers read after it mean nothing. It also clears sk_shutdown,
	 * which every other way into CLOSE leaves set (tcp_done(), tcp_close()):
	 * past the close record, such a socket keeps the totals reported. */
	if (c->close_reported && BPF_CORE_READ_BITFIELD(sk, sk_shutdown) == 0) {
		t->bytes_sent = c->reported_sent;
		t->bytes_received = c->reported_received;
		t->requests = c->reported_requests;
		t->retransmits = c->reported_retransmits;
		t->resets_sent = c->resets_sent;
		t->resets_received = c->resets_received;
		return;
	}

	/* Before ESTABLISHED there is no payload and no base to count from
	 * (tcp_v4_connect() picks the ISN after the SYN_SENT transition). */
	if (!c->opened) {
		__builtin_memset(t, 0, sizeof(*t));
		t->retransmits = retransmits;
		t->resets_sent = c->resets_sent;
		t->resets_received = c->resets_received;
		return;
	}
	if ((sk_flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))) &&
	    copied_seq == rcv_nxt)
		copied_seq -= 1;

	sent32 = write_seq - c->base_write_seq;
	received32 = copied_seq - c->base_copied_seq;
	if (sent32 < c->last_sent32)
		c->sent_high += 1ULL << 32;
	if (received32 < c->last_received32)
		c->received_high += 1ULL << 32;
	c->last_sent32 = sent32;
	c->last_received32 = received32;

	t->bytes_sent = c->sent_high + sent32;
	t->bytes_received = c->received_high + received32;
	t->requests = h->requests;
	t->retransmits = retransmits;
	t->resets_sent = c->resets_sent;
	t->resets_received = c->resets_received;
}

static __always_inline void fill_event(struct sockeye_event *e, const struct sock *sk,
				       const struct tcp_sock *tp, struct conn *c,
				       const struct conn_hot *h, __u8 kind, __u64 duration_ns)
{
	e->kind = kind;
	e->reason = 0;
	e->closed_by = c->closed_by == CLOSED_BY_UNKNOWN ? SOCKEYE_CLOSED_BY_LOCAL : c->closed_by;
	e->flags = (c->adopted ? SOCKEYE_EVF_ADOPTED : 0) |
		   (c->lifecycle == CONN_CLOSED ? SOCKEYE_EVF_CLOSED : 0);
	if (sweep_netns_inum) {
		const struct net *net = sk->__sk_common.skc_net.net;

		if (net && net->ns.inum != sweep_netns_inum)
			e->flags |= SOCKEYE_EVF_NOT_SWEPT;
	}
	e->srtt_us = tp->srtt_us >> 3; /* stored <<3 by tcp_rtt_estimator() */
	e->conn_id = c->conn_id;
	e->duration_ns = duration_ns;
	e->backend = c->backend;
	read_totals(sk, tp, c, h, &e->totals);
}

static __always_inline bool totals_moved(const struct conn *c, const struct sockeye_conn_totals *t)
{
	return t->bytes_sent != c->reported_sent || t->bytes_received != c->reported_received ||
	       t->requests != c->reported_requests || t->retransmits != c->reported_retransmits;
}

static __always_inline void remember_reported(struct conn *c, const struct sockeye_conn_totals *t)
{
	c->reported_sent = t->bytes_sent;
	c->reported_received = t->bytes_received;
	c->reported_requests = t->requests;
	c->reported_retransmits = t->retransmits;
}

#define READ_ONCE_U64(x) (*(volatile __u64 *)&(x))

static __always_inline __u64 turns_pending(const struct conn_hot *h)
{
	return READ_ONCE_U64(h->turns_head) - READ_ONCE_U64(h->turns_flushed);
}

/*
 * Moves the waiting turns into a record. The copy is taken first and
 * claimed after: if the compare-and-swap finds turns_flushed moved, another
 * CPU (the sweep, or the receive hook while the sweep runs) took them first and the
 * copy, which may hold slots being reused, is dropped. Slots are reused only
 * after turns_flushed passed them, so a successful claim means the copy was
 * intact. Stores to a slot are ordered before the turns_head store that
 * publishes it by x86-64's store ordering (the compiler barrier in
 * record_turn() keeps clang from reordering them).
 */
static __always_inline void take_turns(struct conn_hot *h, struct sockeye_event *e)
{
	__u64 flushed = READ_ONCE_U64(h->turns_flushed);
	__u64 count = READ_ONCE_U64(h->turns_head) - flushed;

	e->turn_count = 0;
	if (count == 0)
		return;
	if (count > SOCKEYE_TURN_BATCH)
		count = SOCKEYE_TURN_BATCH;
	for (__u32 i = 0; i < SOCKEYE_TURN_BATCH; i++) {
		if (i >= count)
			break;
		e->turns[i] = h->turns[(flushed + i) & (SOCKEYE_TURN_BATCH - 1)];
	}
	if (__sync_val_compare_and_swap(&h->turns_flushed, flushed, flushed + count) == flushed)
		e->turn_count = (__u32)count;
}

/* sock_orphan() (in tcp_close()) set SOCK_DEAD: the application has let go
 * of the socket, so nothing it does can move the totals again. */
static __always_inline bool socket_orphaned(const struct sock *sk)
{
	return sk->__sk_common.skc_flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DEAD));
}

/* Ring-buffer record; a full buffer is counted, per kind. Returns the
 * record's flags (none when the buffer was full). The agent drains
 * the ring on its own tick (every 100 ms), so records are submitted without
 * waking it, which would cost an irq_work and a wakeup per record; only a
 * ring past ringbuf_wakeup_bytes() wakes it early. */
static __always_inline __u8 emit(const struct sock *sk, const struct tcp_sock *tp,
				 struct conn *c, struct conn_hot *h, __u8 kind, __u64 duration_ns,
				 __u8 reason)
{
	struct sockeye_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	__u8 flags;

	if (!e) {
		count_kernel(SOCKEYE_KC_RINGBUF_FULL + kind);
		return 0;
	}
	fill_event(e, sk, tp, c, h, kind, duration_ns);
	remember_reported(c, &e->totals);
	take_turns(h, e);
	e->reason = reason;
	if (kind == SOCKEYE_EV_CLOSED && socket_orphaned(sk) && !turns_pending(h))
		e->flags |= SOCKEYE_EVF_FINAL;
	flags = e->flags;
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > ringbuf_wakeup_bytes()
				      ? BPF_RB_FORCE_WAKEUP
				      : BPF_RB_NO_WAKEUP);
	return flags;
}

/*
 * When the request went out, without a clock read of our own: before it
 * transmits, tcp_write_xmit() calls tcp_mstamp_refresh(), which stores
 * ktime_get_ns() (the clock bpf_ktime_get_ns() reads) in tcp_clock_cache
 * ("tcp: switch tcp and sch_fq to new earliest departure time model",
 * Linux 4.20). A clock read costs 95-130 ns on some VMs.
 */
static __always_inline __u64 last_transmit_ns(const struct tcp_sock *tp)
{
	if (bpf_core_field_exists(tp->tcp_clock_cache))
		return tp->tcp_clock_cache;
	return bpf_ktime_get_ns();
}

/* Called from every hook that sees a tracked, open socket: data queued
 * since we last looked starts a turn unless one is already waiting. The
 * turn counts as a request at once, so request totals never depend on a
 * response arriving. */
static __always_inline void note_send_progress(const struct tcp_sock *tp, struct conn_hot *h)
{
	__u32 write_seq;

	if (h->tx_final)
		return;
	write_seq = tp->write_seq;
	if (write_seq == h->seen_write_seq)
		return;
	if (h->phase != PHASE_AWAITING_RESPONSE)
		h->request_seq = h->seen_write_seq;
	h->seen_write_seq = write_seq;
	if (h->phase == PHASE_AWAITING_RESPONSE)
		return;
	h->turn_start_ns = last_transmit_ns(tp);
	h->phase = PHASE_AWAITING_RESPONSE;
	/* Plain add: an atomic would not make the rare concurrent start by the
	 * send hook and tcp_probe exact either, and costs a locked op. */
	h->requests += 1;
}

/* A send is starting now (fentry/kprobe on tcp_sendmsg, before any data is
 * queued): same turn rule as note_send_progress(), timed before transmit. */
static __always_inline void note_send_start(struct conn_hot *h, __u64 when)
{
	if (h->tx_final || h->phase == PHASE_AWAITING_RESPONSE)
		return;
	h->turn_start_ns = when;
	h->phase = PHASE_AWAITING_RESPONSE;
	h->requests += 1;
}

static __always_inline void send_marks_add(const void *sk)
{
	__u64 key = (__u64)(unsigned long)sk;
	struct send_mark none = {};

	if (send_marks_enabled() && bpf_map_update_elem(&send_marks, &key, &none, BPF_ANY))
		count_kernel(SOCKEYE_KC_SEND_MARKS_FULL);
}

static __always_inline void send_marks_remove(const void *sk)
{
	__u64 key = (__u64)(unsigned long)sk;

	if (send_marks_enabled())
		bpf_map_delete_elem(&send_marks, &key);
}

static __always_inline void consume_send_mark(const void *sk, struct conn_hot *h)
{
	__u64 key = (__u64)(unsigned long)sk;
	struct send_mark *mark;
	__u64 when;

	if (!send_marks_enabled())
		return;
	mark = bpf_map_lookup_elem(&send_marks, &key);
	if (!mark || !mark->send_start_ns)
		return;
	when = mark->send_start_ns;
	mark->send_start_ns = 0;
	note_send_start(h, when);
}

/*
 * A full batch of turns from the receive hook (sk_data_ready, its fentry
 * twin on sock_def_readable, or tcp_probe):
 * conn_id and the turns, nothing else (SOCKEYE_EV_TURN). Reaching the socket
 * storage and reading the totals for every batch cost tcp_probe ~35 ns per
 * followed segment
 * (bench/README.md, hook cost); the totals reach the agent with the next
 * sweep or state change instead. A copy that lost the compare-and-swap in
 * take_turns() carries nothing and is discarded.
 */
static __always_inline void emit_turns(struct conn_hot *h)
{
	struct sockeye_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count_kernel(SOCKEYE_KC_RINGBUF_FULL + SOCKEYE_EV_TURN);
		return;
	}
	e->kind = SOCKEYE_EV_TURN;
	e->conn_id = h->conn_id;
	take_turns(h, e);
	if (!e->turn_count) {
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		return;
	}
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > ringbuf_wakeup_bytes()
				      ? BPF_RB_FORCE_WAKEUP
				      : BPF_RB_NO_WAKEUP);
}

/* Appends a completed turn; a full batch goes out at once. */
static __always_inline void record_turn(const struct tcp_sock *tp, struct conn_hot *h,
					__u64 ttfb_ns)
{
	__u64 head = h->turns_head;
	__u64 flushed = READ_ONCE_U64(h->turns_flushed);
	struct sockeye_turn *slot;

	if (head - flushed >= SOCKEYE_TURN_BATCH) {
		/* The last batch record found the ring buffer full. Try again; if
		 * it is still full, give up the oldest turn for the new one. */
		emit_turns(h);
		flushed = READ_ONCE_U64(h->turns_flushed);
		if (head - flushed >= SOCKEYE_TURN_BATCH &&
		    __sync_val_compare_and_swap(&h->turns_flushed, flushed, flushed + 1) == flushed)
			count_kernel(SOCKEYE_KC_TURNS_LOST);
	}
	slot = &h->turns[head & (SOCKEYE_TURN_BATCH - 1)];
	slot->ttfb_us = ttfb_ns >= 0xffffffffULL * 1000 ? 0xffffffffU : (__u32)((ttfb_ns + 500) / 1000);
	slot->srtt_us = tp->srtt_us >> 3; /* stored <<3 by tcp_rtt_estimator() */
	asm volatile("" ::: "memory");
	h->turns_head = head + 1;
	if (head + 1 - READ_ONCE_U64(h->turns_flushed) >= SOCKEYE_TURN_BATCH)
		emit_turns(h);
}

static __always_inline void note_response_bytes(const struct tcp_sock *tp, struct conn_hot *h)
{
	if (h->phase != PHASE_AWAITING_RESPONSE)
		return;
	h->phase = PHASE_RECEIVING;
	record_turn(tp, h, bpf_ktime_get_ns() - h->turn_start_ns);
}

/* The receive hook's way in, without the socket storage: the slot the socket's
 * cookie maps to, if the socket owns it. The cookie is read directly from
 * skc_cookie (set once, by bpf_get_socket_cookie() in claim_hot_slot(), and
 * never changed); a socket without one owns no slot. */
static __always_inline struct conn_hot *owned_hot_slot(__u64 cookie)
{
	struct conn_hot *h;
	__u32 idx;

	if (!hot_slots_enabled() || !cookie)
		return NULL;
	idx = cookie & hot_slot_mask();
	h = bpf_map_lookup_elem(&hot_slots, &idx);
	if (h && READ_ONCE_U64(h->owner) == cookie)
		return h;
	return NULL;
}

/* Where this connection's hot state is now: the slot its cookie owns, if
 * any (cookies are never reused, so a slot that changed hands is never
 * mistaken for ours), else its storage. */
static __always_inline struct conn_hot *conn_hot(struct conn *c)
{
	struct conn_hot *h = owned_hot_slot(c->cookie);

	return h ? h : &c->hot;
}

/* Called under the socket lock (state change, adoption walk), before any
 * hot field is set. The slot keeps its turn counters (see struct
 * conn_hot); everything else starts afresh. */
static __always_inline struct conn_hot *claim_hot_slot(struct sock *sk, struct conn *c)
{
	__u64 cookie = bpf_get_socket_cookie(sk);
	__u32 idx = cookie & hot_slot_mask();
	struct conn_hot *h;

	c->cookie = cookie;
	c->hot.owner = cookie;
	if (!hot_slots_enabled())
		return &c->hot;
	h = bpf_map_lookup_elem(&hot_slots, &idx);
	if (!h || __sync_val_compare_and_swap(&h->owner, 0, cookie) != 0) {
		count_kernel(SOCKEYE_KC_HOT_SLOT_TAKEN);
		return &c->hot;
	}
	/* A previous owner's state; conn_mark_open() sets the rest. */
	h->turn_start_ns = 0;
	h->requests = 0;
	h->tx_final = 0;
	return h;
}

/*
 * Hands the slot back (socket destroyed, or connecting again): the hot
 * state moves into the storage first, so whoever still reads this
 * connection afterwards (the sweep, until the storage is freed) finds it
 * there, then the slot is freed. Turns still waiting in the slot are
 * claimed by compare-and-swap like any record would: if that wins, they
 * are lost (the record that should have carried them found the ring
 * buffer full) and counted.
 */
static __always_inline void release_hot_slot(struct conn *c)
{
	struct conn_hot *h = owned_hot_slot(c->cookie);
	__u64 flushed, head;

	if (!h)
		return;
	c->hot.turn_start_ns = h->turn_start_ns;
	c->hot.seen_write_seq = h->seen_write_seq;
	c->hot.seen_rcv_nxt = h->seen_rcv_nxt;
	c->hot.request_seq = h->request_seq;
	c->hot.requests = h->requests;
	c->hot.phase = h->phase;
	c->hot.tx_final = h->tx_final;
	c->hot.turns_head = 0;
	c->hot.turns_flushed = 0;
	flushed = READ_ONCE_U64(h->turns_flushed);
	head = READ_ONCE_U64(h->turns_head);
	if (head != flushed &&
	    __sync_val_compare_and_swap(&h->turns_flushed, flushed, head) == flushed)
		count_kernel_by(SOCKEYE_KC_TURNS_LOST, head - flushed);
	asm volatile("" ::: "memory");
	*(volatile __u64 *)&h->owner = 0;
}

/* Start following an open socket from its current sequence numbers. */
static __always_inline struct conn_hot *conn_mark_open(struct sock *sk, const struct tcp_sock *tp,
						       struct conn *c)
{
	struct conn_hot *h = claim_hot_slot(sk, c);

	c->hot.conn_id = c->conn_id; /* kept there when a slot is given back */
	h->conn_id = c->conn_id;
	c->base_write_seq = tp->write_seq;
	c->base_copied_seq = tp->copied_seq;
	h->seen_write_seq = c->base_write_seq;
	h->seen_rcv_nxt = tp->rcv_nxt;
	c->last_sent32 = 0;
	c->last_received32 = 0;
	c->sent_high = 0;
	c->received_high = 0;
	h->phase = PHASE_IDLE;
	c->lifecycle = CONN_OPEN;
	c->opened = 1;
	return h;
}

/*
 * The same for a connection whose ESTABLISHED transition was missed (a run
 * skipped in both of the state hook's programs), found open at a later
 * transition. Its bytes still count from the start: snd_una and rcv_nxt only
 * ever advance together with bytes_acked and bytes_received
 * (tcp_snd_una_update(), tcp_rcv_nxt_update()), and bytes_acked includes the
 * SYN, so these are the bases conn_mark_open() would have read at
 * ESTABLISHED. Requests and turns before now are not counted.
 */
static __always_inline struct conn_hot *conn_mark_open_late(struct sock *sk,
							    const struct tcp_sock *tp,
							    struct conn *c)
{
	struct conn_hot *h = conn_mark_open(sk, tp, c);

	c->base_write_seq = tp->snd_una - (__u32)tp->bytes_acked + 1;
	c->base_copied_seq = tp->rcv_nxt - (__u32)tp->bytes_received;
	return h;
}

#endif /* SOCKEYE_BPF_H */
