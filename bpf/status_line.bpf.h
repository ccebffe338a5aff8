/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A response's status line, read from wherever a program finds the
 * response's first bytes: a packet (the cgroup_skb programs of
 * http_status.bpf.c, with bpf_skb_load_bytes()) or the buffer the proxy
 * hands to send() (frontend_send.bpf.c, with bpf_probe_read_user()). The
 * source is a constant at every call site, so each program keeps only its
 * own helper: cgroup_skb programs may not call bpf_probe_read_user(), and
 * tracing programs have no packet.
 */
#ifndef SOCKEYE_STATUS_LINE_BPF_H
#define SOCKEYE_STATUS_LINE_BPF_H

#include "sockeye.bpf.h"
#include "http_status.h"

/* How far an interim response's header block is searched for its end: "100
 * Continue" takes 25 bytes; 103 Early Hints with long Link headers can take
 * more, and then the response counts without a status
 * (SOCKEYE_KC_STATUS_UNREAD). A power of two. */
#define INTERIM_SCAN_BYTES 128

enum payload_source { PAYLOAD_PACKET, PAYLOAD_SEND_BUFFER };

/* Offsets are from the packet's network header, or from `buffer`. */
struct payload {
	enum payload_source source;
	struct __sk_buff *skb;
	const __u8 *buffer; /* user memory of the process that sends */
};

static __always_inline long payload_read(const struct payload *p, __u32 at, void *to, __u32 len)
{
	if (p->source == PAYLOAD_PACKET)
		return bpf_skb_load_bytes(p->skb, at, to, len);
	return bpf_probe_read_user(to, len, p->buffer + at);
}

/* Offset just past the "\r\n\r\n" that ends a header block starting at
 * `from`, if it is within the first INTERIM_SCAN_BYTES of it and before
 * `end`; else 0. Each position is tested on its own, with no state carried
 * from one to the next, so that the verifier's walk of the loop stays short. */
static __always_inline __u32 header_block_end(const struct payload *p, __u32 from, __u32 end)
{
	__u8 buf[INTERIM_SCAN_BYTES] = {};
	__u32 len;

	if (from >= end)
		return 0;
	len = end - from;
	if (len > INTERIM_SCAN_BYTES)
		len = INTERIM_SCAN_BYTES;
	/* 1..INTERIM_SCAN_BYTES in a form the verifier can bound. */
	len = ((len - 1) & (INTERIM_SCAN_BYTES - 1)) + 1;
	if (payload_read(p, from, buf, len))
		return 0;
	/* Bytes past len stay 0 and never match. */
	for (__u32 i = 0; i + 4 <= INTERIM_SCAN_BYTES; i++) {
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
			return from + i + 4;
	}
	return 0;
}

/* The status line at `at`: its code, -1 if it is none, or 0 if the
 * bytes end before one could be read and what it holds could start one. */
static __always_inline int status_at(const struct payload *p, __u32 at, __u32 end)
{
	static const char prefix[] = "HTTP/1.";
	unsigned char line[SOCKEYE_STATUS_LINE_LEN] = {};
	__u32 len;

	if (at >= end)
		return 0;
	len = end - at;
	if (len >= SOCKEYE_STATUS_LINE_LEN) {
		if (payload_read(p, at, line, sizeof(line)))
			return 0;
		return sockeye_http_status(line);
	}
	/* 1..SOCKEYE_STATUS_LINE_LEN - 1 in a form the verifier can bound. */
	len = ((len - 1) & 15) + 1;
	if (len >= SOCKEYE_STATUS_LINE_LEN || payload_read(p, at, line, len))
		return 0;
	for (__u32 i = 0; i < sizeof(prefix) - 1; i++) {
		if (i < len && line[i] != prefix[i])
			return -1;
	}
	return 0;
}

/* Reads the status line at the start of a response, whose bytes from
 * `start` to `end` are at hand and whose first byte is `seq`, and the final
 * one after an interim response in the same bytes. */
static __always_inline void read_status(const struct payload *p, struct conn_hot *h, __u32 start,
					__u32 end, __u32 seq)
{
	__u32 next;
	int code;

	h->status_interim = 0;
	h->status_hold = 0;
	code = status_at(p, start, end);
	if (code < 0) {
		/* Not a status line: on a connection known to speak HTTP/1.x a
		 * response of some other shape; else not HTTP/1.x at all. */
		if (h->http == HTTP_YES)
			h->status = SOCKEYE_STATUS_OTHER;
		else
			h->http = HTTP_NO;
		return;
	}
	if (code == 0) {
		if (h->http == HTTP_YES)
			count_kernel(SOCKEYE_KC_STATUS_UNREAD);
		return;
	}
	h->http = HTTP_YES;
	if (!sockeye_http_status_is_interim(code)) {
		h->status = code;
		return;
	}
	next = header_block_end(p, start + SOCKEYE_STATUS_LINE_LEN, end);
	if (!next) {
		count_kernel(SOCKEYE_KC_STATUS_UNREAD);
		return;
	}
	if (next >= end) {
		/* The final status comes in later bytes: the turn waits. */
		h->status_interim = 1;
		h->status_hold = 1;
		h->status_seq = seq + (end - start);
		return;
	}
	code = status_at(p, next, end);
	if (code > 0 && !sockeye_http_status_is_interim(code))
		h->status = code;
	else if (code < 0)
		h->status = SOCKEYE_STATUS_OTHER;
	else
		count_kernel(SOCKEYE_KC_STATUS_UNREAD);
}

#endif /* SOCKEYE_STATUS_LINE_BPF_H */
