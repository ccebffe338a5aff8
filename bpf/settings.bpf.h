/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Load-time settings: immediates patched into the instructions for the
 * per-segment path, rodata and bss for the rest.
 */
#ifndef SOCKEYE_SETTINGS_BPF_H
#define SOCKEYE_SETTINGS_BPF_H

#include "shared.bpf.h"

/*
 * Settings on the per-segment path are immediates in the instruction stream,
 * not `const volatile` rodata: the verifier knows a rodata value but the JIT
 * still loads it, from the .rodata map's own page, and on a host without PCID
 * (the TLB is flushed at every kernel entry) that first touch cost a followed
 * sk_data_ready ~30 ns of its ~180
 * (bench/results/hook_cost_immediates_2026-12-04.txt). The marker
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
#ifndef SOCKEYE_STATUS_CAST
SOCKEYE_SHARED const volatile __u32 sweep_netns_inum;
#else
/* The status object of its own (http_status.bpf.c) reads neither; static,
 * they stay out of it instead of making .rodata and .bss maps nothing
 * writes. */
static const volatile __u32 sweep_netns_inum;
#endif

/* Accepted connections of frontend_listeners are followed (--frontends), in
 * the network namespace whose listeners the agent scanned (its own: the
 * inode number of /proc/self/ns/net), where those ports are the listeners'. */
SOCKEYE_SHARED const volatile __u32 follow_frontends;
SOCKEYE_SHARED const volatile __u32 frontend_netns_inum;

/* Written by the agent before each sweep: emit every open connection, not
 * only those whose totals changed. */
#ifndef SOCKEYE_STATUS_CAST
SOCKEYE_SHARED volatile __u32 sweep_all;
#else
static volatile __u32 sweep_all;
#endif

/* Set by the agent once the program that reads frontend responses is attached
 * (on_cgroup_egress(), bpf/http_status.bpf.c): a frontend's response then
 * always ends its wait. Until then (or where the kernel refused it) a
 * request that arrives while the last one
 * still waits is a new one when the proxy wrote anything since: without it a
 * frontend connection would count only its first request. */
#ifndef SOCKEYE_STATUS_CAST
SOCKEYE_SHARED volatile __u32 frontend_responses_read;
#else
static volatile __u32 frontend_responses_read;
#endif

#endif /* SOCKEYE_SETTINGS_BPF_H */
