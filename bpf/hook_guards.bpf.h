/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Main and standby programs for the hooks whose every run matters (the
 * state change, the destroy and the reset hooks).
 *
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
 * +14 ns (bench/results/nested_runs_2026-12-05.txt). A run skipped while
 * the CPU is not marked (in such a run, or at the edges of a marked one) is
 * not recovered; the kernel counts it in recursion_misses (where it counts
 * them), which the agent exports, and a followed connection's missed
 * ESTABLISHED or CLOSE is reported when a later transition or the socket's
 * destruction shows it (SOCKEYE_SEEN_LATE). The marks are struct hook_guard
 * entries of the hook_guards map (maps.bpf.h), one per guarded hook and CPU.
 */
#ifndef SOCKEYE_HOOK_GUARDS_BPF_H
#define SOCKEYE_HOOK_GUARDS_BPF_H

#include "maps.bpf.h"

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

#endif /* SOCKEYE_HOOK_GUARDS_BPF_H */
