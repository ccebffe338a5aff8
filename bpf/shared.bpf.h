/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every sockeye BPF header builds on: the kernel types (vmlinux.h),
 * libbpf's helpers, the kernel differences (compat.bpf.h), the record
 * format shared with the agent (sockeye_abi.h), and SOCKEYE_SHARED.
 *
 * Each probe family is its own *.bpf.c; the objects are statically linked
 * into one (bpftool gen object), so the maps and settings are defined once,
 * in conn_lifecycle.bpf.c (which defines SOCKEYE_DEFINE_SHARED before its
 * first include), and declared extern everywhere else.
 */
#ifndef SOCKEYE_SHARED_BPF_H
#define SOCKEYE_SHARED_BPF_H

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

#endif /* SOCKEYE_SHARED_BPF_H */
