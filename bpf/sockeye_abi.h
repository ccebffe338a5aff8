/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The contract between sockeye's BPF programs and the agent: plain
 * fixed-width types only, included both by clang -target bpf (after
 * vmlinux.h) and by the C++ agent (after <linux/types.h>).
 */
#ifndef SOCKEYE_ABI_H
#define SOCKEYE_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SOCKEYE_COMM_LEN 16
#define SOCKEYE_MAX_COMM_FILTERS 8
#define SOCKEYE_MAX_CIDR_FILTERS 32

/* Every record the kernel hands to the agent, from the ring buffer or
 * from an iterator's seq_file, is one struct sockeye_event. */
enum sockeye_event_kind {
	SOCKEYE_EV_CONNECTED = 1,   /* SYN_SENT -> ESTABLISHED */
	SOCKEYE_EV_CONNECT_FAILED,  /* SYN_SENT -> CLOSE */
	SOCKEYE_EV_TURN,            /* a full batch of completed turns: only conn_id,
				     * turn_count and turns[] are filled */
	SOCKEYE_EV_CLOSED,          /* established connection reached CLOSE */
	SOCKEYE_EV_PROGRESS,        /* periodic sweep: totals of a live connection */
	SOCKEYE_EV_ADOPTED,         /* connection found open at start-up */
	SOCKEYE_EV_RESET_AFTER_CLOSE, /* a reset sent after the connection's final
				       * CLOSED record: one more for its backend */
	SOCKEYE_EV_KIND_COUNT,
};

/* sockeye_event.flags */
#define SOCKEYE_EVF_ADOPTED 0x1 /* open before the agent started: no connect time, partial lifetime */
#define SOCKEYE_EVF_CLOSED 0x2  /* the kernel saw this connection reach CLOSE */
/* In a network namespace the sweep does not walk (iter/tcp walks only the
 * agent's own): a full sweep not reporting it does not mean it closed. */
#define SOCKEYE_EVF_NOT_SWEPT 0x4
/* On a CLOSED record: the application had already closed the socket and no
 * turn was left behind, so its totals cannot move again. The agent forgets
 * the connection at once instead of remembering it for late records: at
 * thousands of connections per second that memory grew by ~140 bytes per
 * connection for a minute. The one thing such a socket can still do is
 * send a reset (tcp_close() with TCP_LINGER2 < 0 in FIN_WAIT2, or an orphan
 * dropped under memory pressure: CLOSE first, then the reset), which comes
 * as SOCKEYE_EV_RESET_AFTER_CLOSE. */
#define SOCKEYE_EVF_FINAL 0x8
/* On a CLOSED record: the last request on the connection got no byte of a
 * response before it closed (by closed_by's side). */
#define SOCKEYE_EVF_UNANSWERED 0x10
/* A connection accepted on a frontend listener (the client side): its
 * `backend` field holds the local address and port the client reached, its
 * requests are received and its responses sent. */
#define SOCKEYE_EVF_FRONTEND 0x20

/* A CONNECTED or CLOSED record for a transition the kernel skipped in both of
 * the state hook's programs (bpf/hook_guards.bpf.h), reported
 * when a later one showed it: its duration_ns is not a measurement. */
#define SOCKEYE_SEEN_LATE 1

/*
 * Hooks that fire once per connection event (not per segment) and whose every
 * run matters. The kernel skips a tracing program that is already running on
 * the same CPU -- a softirq state change arriving while a process-context one
 * is being handled -- so each of these has a standby program on the same
 * tracepoint that handles exactly the skipped runs (guard_enter() in
 * bpf/hook_guards.bpf.h).
 */
enum sockeye_guarded_hook {
	SOCKEYE_GUARD_STATE = 0,     /* inet_sock_set_state */
	SOCKEYE_GUARD_DESTROY,       /* tcp_destroy_sock */
	SOCKEYE_GUARD_RESET_SENT,    /* tcp_send_reset */
	SOCKEYE_GUARD_RESET_RECEIVED, /* tcp_receive_reset */
	SOCKEYE_GUARD_COUNT,
};

/* Per-CPU counters the kernel side keeps so that nothing is dropped
 * silently; the agent sums them over CPUs and exports them. */
enum sockeye_kernel_counter {
	/* SOCKEYE_KC_RINGBUF_FULL + kind: ring buffer reservation failed for
	 * a record of that kind. Index 0 itself is unused. */
	SOCKEYE_KC_RINGBUF_FULL = 0,
	/* Connect not followed: socket storage could not be allocated. */
	SOCKEYE_KC_STORAGE_FAILED = SOCKEYE_EV_KIND_COUNT,
	/* An iterator's seq_file write failed (record lost). */
	SOCKEYE_KC_SEQ_WRITE_FAILED,
	/* kprobe mode: a followed socket could not get a send-mark slot, so its
	 * turns start at the next received segment instead. */
	SOCKEYE_KC_SEND_MARKS_FULL,
	/* Completed turns (time-to-first-byte samples) that never reached the
	 * agent: their batch record could not be written before the socket's
	 * storage had to reuse the slot, or before the socket was freed. */
	SOCKEYE_KC_TURNS_LOST,
	/* Not a loss: connections that opened while their hot slot was taken
	 * and keep their per-segment state in socket storage (slower path). */
	SOCKEYE_KC_HOT_SLOT_TAKEN,
	/* Responses on an HTTP/1.x connection whose status could not be read:
	 * a first segment too short for a status line, or interim (1xx)
	 * headers longer than the program scans. Their turns count without a
	 * status. */
	SOCKEYE_KC_STATUS_UNREAD,
	/* Not a loss: records the ring buffer had no room for, kept in the
	 * unsent_records map instead, where the agent collects them. */
	SOCKEYE_KC_RECORDS_DEFERRED,
	/* SOCKEYE_KC_NESTED_RECOVERED + guarded hook: events whose main program
	 * the kernel skipped (it was already running on that CPU) and which the
	 * hook's standby program handled instead. Not a loss. */
	SOCKEYE_KC_NESTED_RECOVERED,
	SOCKEYE_KC_COUNT = (int)SOCKEYE_KC_NESTED_RECOVERED + (int)SOCKEYE_GUARD_COUNT,
};

enum sockeye_connect_failure {
	SOCKEYE_FAIL_REFUSED = 0,
	SOCKEYE_FAIL_TIMEOUT,
	SOCKEYE_FAIL_UNREACHABLE,
	SOCKEYE_FAIL_RESET,
	SOCKEYE_FAIL_OTHER,
	SOCKEYE_FAIL_COUNT,
};

enum sockeye_closed_by {
	SOCKEYE_CLOSED_BY_LOCAL = 0,
	SOCKEYE_CLOSED_BY_REMOTE,
};

/* The local ports of the frontend listeners, a bit each (port / 8, bit
 * port % 8): the frontend_ports map's one value, written by the agent. */
struct sockeye_frontend_ports {
	__u8 bits[65536 / 8];
};

/* Backend address: IPv6, or IPv4 as a v4-mapped IPv6 address
 * (::ffff:a.b.c.d) so that one code path matches and keys both. */
struct sockeye_endpoint {
	__u8 addr[16];
	__u16 port; /* host byte order */
	__u16 pad[3];
};

/* Per-connection totals are cumulative since the connection was
 * established (or adopted). The agent turns them into counter increments
 * by differencing against the last totals it saw for the same conn_id, so
 * a lost or reordered record delays a count but never loses or doubles it. */
struct sockeye_conn_totals {
	__u64 bytes_sent;
	__u64 bytes_received;
	__u32 requests;
	__u32 retransmits;
	__u32 resets_sent;
	__u32 resets_received;
};

/* Completed turns are batched per connection: one ring-buffer record per
 * request cost ~470 ns in tcp_probe
 * (bench/results/hook_cost_batched_turns_2026-11-23.txt), most of it moving
 * a fresh ring line between CPUs. What a record costs is the record itself
 * (reserve, query, submit: ~300-400 ns in the same measurements), not its
 * size: 16 turns per record rather than 8 cost a followed sk_data_ready
 * ~15-20 ns less per response, and a compact record without the totals saved
 * nothing. At most 16: bpf/conn_sweep.bpf.c builds a sockeye_event on the
 * 512-byte BPF stack. Any record kind may carry the
 * turns that were waiting when it was written (a CLOSED record carries the
 * last ones; the periodic sweep those of idle connections). */
#define SOCKEYE_TURN_BATCH 16 /* a power of two: slots are indexed by n & (BATCH - 1) */

/* 12 bytes: with 16 of them a followed socket's storage (struct conn, ~400 B)
 * still fits, with the kernel's element header, in a 512 B allocation.
 * Microseconds lose nothing on the default path, where a turn starts at
 * tp->rack.mstamp (us). The smoothed RTT shares a word with the HTTP status:
 * 22 bits of microseconds (4.19 s, saturated) and 10 of status. */
struct sockeye_turn {
	__u32 ttfb_us;		/* request start to first response byte; at most ~71 min */
	__u32 srtt_status;	/* SOCKEYE_TURN_SRTT_US(), SOCKEYE_TURN_STATUS() */
	/* The previous response on the connection, request start to its last
	 * byte, completed when this request started; 0 when none. */
	__u32 prev_response_us;
};

#define SOCKEYE_TURN_SRTT_BITS 22
#define SOCKEYE_TURN_SRTT_MAX ((1U << SOCKEYE_TURN_SRTT_BITS) - 1)
#define SOCKEYE_TURN_SRTT_US(t) ((t).srtt_status & SOCKEYE_TURN_SRTT_MAX)
#define SOCKEYE_TURN_STATUS(t) ((t).srtt_status >> SOCKEYE_TURN_SRTT_BITS)

/* The HTTP status a turn carries (10 bits): none (not an HTTP/1.x
 * connection, or the status line was not seen), other (an HTTP/1.x
 * connection whose response did not start with a status line), or the
 * three-digit code itself (100-999). */
#define SOCKEYE_STATUS_NONE 0
#define SOCKEYE_STATUS_OTHER 1

struct sockeye_event {
	__u8 kind;      /* enum sockeye_event_kind */
	/* CONNECT_FAILED: enum sockeye_connect_failure; CONNECTED and CLOSED:
	 * SOCKEYE_SEEN_LATE if the transition itself was missed (no duration). */
	__u8 reason;
	__u8 closed_by; /* enum sockeye_closed_by, CLOSED only */
	__u8 flags;     /* SOCKEYE_EVF_* */
	__u32 srtt_us;  /* smoothed RTT at the time of the record, 0 if none */
	__u64 conn_id;  /* unique per connection for the agent's lifetime */
	/* CONNECTED: connect duration; CLOSED: lifetime since connect start
	 * (since adoption for adopted connections); 0 otherwise. */
	__u64 duration_ns;
	/* The peer of a backend connection; the local endpoint of a frontend
	 * one (SOCKEYE_EVF_FRONTEND). */
	struct sockeye_endpoint backend;
	struct sockeye_conn_totals totals;
	__u32 turn_count; /* valid entries of turns[], at most SOCKEYE_TURN_BATCH */
	/* CLOSED, and PROGRESS from a sweep that holds the socket lock: a
	 * response that completed with this record (the connection closed, or
	 * received nothing for a sweep interval), request start to last byte;
	 * 0 when none. */
	__u32 response_us;
	struct sockeye_turn turns[SOCKEYE_TURN_BATCH];
};

/*
 * Everything of a struct sockeye_event up to its turns, laid out the same
 * (fill_event() fills either). A record the ring buffer had no room for is
 * kept as one in the unsent_records map (bpf/maps.bpf.h) until the agent
 * collects it; its turns are counted as lost. Without it a connection's last
 * records, lost together, took its final totals with them: its socket
 * storage is freed and nothing reports them again.
 */
struct sockeye_event_head {
	__u8 kind;
	__u8 reason;
	__u8 closed_by;
	__u8 flags;
	__u32 srtt_us;
	__u64 conn_id;
	__u64 duration_ns;
	struct sockeye_endpoint backend;
	struct sockeye_conn_totals totals;
	__u32 turn_count; /* always 0 */
	__u32 response_us;
};

struct sockeye_unsent_key {
	__u64 conn_id;
	__u32 kind;
	__u32 pad;
};

/*
 * Load-time settings read on every followed segment are not rodata but
 * immediates in the instructions (SOCKEYE_IMM() in bpf/settings.bpf.h): each
 * use is a 64-bit load-immediate of SOCKEYE_IMM_MARKER in the upper half and
 * the id in the lower, which the agent replaces before load
 * (agent/load_time_immediates.h).
 */
#define SOCKEYE_IMM_MARKER 0x5ec0e1ffU

enum sockeye_imm_id {
	SOCKEYE_IMM_HOT_SLOTS_ENABLED = 1, /* 0 for --hot-slots 0 */
	SOCKEYE_IMM_HOT_SLOT_MASK,         /* --hot-slots minus one */
	SOCKEYE_IMM_SEND_MARKS_ENABLED,    /* kprobe send mode: keep send_marks */
	SOCKEYE_IMM_RINGBUF_WAKEUP_BYTES,  /* fill level past which a record wakes the agent */
	SOCKEYE_IMM_COUNT,
};

/* Backend filter. Addresses and masks are in network byte order over the
 * 16-byte (v4-mapped) address. */
struct sockeye_cidr_filter {
	__u32 addr[4];
	__u32 mask[4];
	__u16 port; /* host byte order, 0 = any port */
	__u8 exclude;
	__u8 pad;
};

/* Which connects are followed: the single entry of the `filters` array map,
 * written by the agent after load and again on SIGHUP. Includes come first
 * in cidrs[]; excludes follow. */
struct sockeye_filters {
	__u32 comm_count;
	__u32 cidr_count;
	__u32 include_count;
	__u32 pad;
	char comms[SOCKEYE_MAX_COMM_FILTERS][SOCKEYE_COMM_LEN];
	struct sockeye_cidr_filter cidrs[SOCKEYE_MAX_CIDR_FILTERS];
};

#endif /* SOCKEYE_ABI_H */
