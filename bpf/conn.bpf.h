/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The per-socket connection record (struct conn, in socket storage) and
 * the per-segment part of it (struct conn_hot, in a hot slot or in the
 * record itself: hot_slots.bpf.h).
 */
#ifndef SOCKEYE_CONN_BPF_H
#define SOCKEYE_CONN_BPF_H

#include "shared.bpf.h"

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

/* Whether a connection speaks HTTP/1.x, decided by its first response
 * (bpf/http_status.bpf.c). */
enum conn_http {
	HTTP_UNKNOWN = 0,
	HTTP_YES,
	HTTP_NO, /* the first response was no status line: never looked at again */
};

/* What the per-segment hook (and, when attached, the send hook) reads and
 * writes for one open connection. It lives in a hot_slots entry the
 * connection owns, or, when its slot is taken, in its socket storage
 * (struct conn.hot): conn_hot() says which. The fields every followed
 * segment reads come first. */
struct conn_hot {
	/* Socket cookie of the connection this state belongs to; in a slot, 0
	 * when free. The sweep re-reads it after reading the rest. */
	__u64 owner;
	__u32 seen_write_seq; /* write_seq when send progress was last seen */
	__u32 seen_rcv_nxt;   /* rcv_nxt at the last sk_data_ready (on_data_ready()) */
	__u32 request_seq;    /* write_seq where the waiting turn's request began */
	__u32 requests;
	__u8 phase;
	__u8 tx_final; /* FIN queued: conn.final_write_seq holds the send total */
	/* The response being received has its first byte, and its end
	 * (last_rx_ns) has not been reported yet (take_response()). */
	__u8 response_open;
	/* The status program saw an interim (1xx) response: the turn waits
	 * for the final one (on_data_ready()). */
	__u8 status_hold;
	/* Written by the status program (cgroup_skb ingress), before the
	 * receive hook handles the same segment: the status of the response
	 * whose first byte this is, taken by record_turn(). */
	__u16 status;
	__u8 http;          /* enum conn_http */
	__u8 status_interim; /* the next status line starts at status_seq */
	/* write_seq when the status program last found a response start: a
	 * request sent since means the next response start is due. */
	__u32 status_write_seq;
	__u32 status_seq;
	/* The previous response's duration, completed when the current request
	 * started; carried by the current turn (struct sockeye_turn). */
	__u32 prev_response_us;
	/* Accepted on a frontend listener: requests are received and responses
	 * sent (frontend_request_started(), bpf/http_status.bpf.c's egress
	 * program). In what was padding before turn_start_ns. */
	__u8 frontend;
	__u8 pad[3];
	__u64 turn_start_ns;
	__u64 last_rx_ns; /* the response's last payload arrival */
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
	struct sockeye_turn turns[SOCKEYE_TURN_BATCH];
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
	__u8 frontend;       /* accepted on a frontend listener; hot.frontend too */
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
	/* The backend; for a frontend connection the local endpoint. */
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

/* For conn_hot fields another CPU may be writing (the turn counters, a
 * slot's owner): one load each, never merged or repeated by the compiler. */
#define READ_ONCE_U64(x) (*(volatile __u64 *)&(x))

#endif /* SOCKEYE_CONN_BPF_H */
