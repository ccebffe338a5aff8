/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Everything the probe families share, in dependency order: each header
 * includes what it needs, and this order is also the order in which the
 * shared maps and settings are defined (conn_lifecycle.bpf.c, with
 * SOCKEYE_DEFINE_SHARED). bpf/README.md says what each one holds.
 */
#ifndef SOCKEYE_BPF_H
#define SOCKEYE_BPF_H

#include "shared.bpf.h"

#include "conn.bpf.h"
#include "maps.bpf.h"
#include "settings.bpf.h"
#include "hook_guards.bpf.h"
#include "filters.bpf.h"
#include "turns.bpf.h"
#include "records.bpf.h"
#include "hot_slots.bpf.h"

#endif /* SOCKEYE_BPF_H */
