/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The HTTP/1.x status line, read from the first bytes of a response. Plain
 * C over a byte array, included both by the cgroup_skb program
 * (bpf/http_status.bpf.c) and by the agent's unit tests, which check it
 * against every case the kernel side relies on.
 */
#ifndef SOCKEYE_HTTP_STATUS_H
#define SOCKEYE_HTTP_STATUS_H

/* "HTTP/1.1 200": the bytes a status line needs before its reason phrase. */
#define SOCKEYE_STATUS_LINE_LEN 12

/*
 * The status code (100-999) of a status line starting at p, or -1 when
 * these bytes are not one. RFC 9112 section 4: "HTTP/" 1 "." DIGIT SP
 * 3DIGIT, the name case-sensitive. HTTP/2 (a binary SETTINGS frame), TLS
 * records and other protocols are never mistaken for it.
 */
static inline int sockeye_http_status(const unsigned char p[SOCKEYE_STATUS_LINE_LEN])
{
	int code;

	if (p[0] != 'H' || p[1] != 'T' || p[2] != 'T' || p[3] != 'P' || p[4] != '/' ||
	    p[5] != '1' || p[6] != '.' || p[7] < '0' || p[7] > '9' || p[8] != ' ')
		return -1;
	if (p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
		return -1;
	code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	return code;
}

/* Interim responses (RFC 9110 section 15.2) are followed by the final one
 * on the same request: 100 Continue, 102 Processing, 103 Early Hints. 101
 * Switching Protocols is final: what follows is another protocol. */
static inline int sockeye_http_status_is_interim(int code)
{
	return code >= 100 && code <= 199 && code != 101;
}

#endif /* SOCKEYE_HTTP_STATUS_H */
