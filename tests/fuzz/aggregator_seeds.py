#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_aggregator (corpus/aggregator/) in the
input format that fuzz_aggregator.cc reads: one operation byte, then its
operands. Run from anywhere; the files are committed."""
import os
import struct

CONNECTED, CONNECT_FAILED, TURN, CLOSED, PROGRESS, ADOPTED, RESET_AFTER_CLOSE = range(1, 8)
EVF_ADOPTED, EVF_CLOSED, EVF_NOT_SWEPT, EVF_FINAL = 1, 2, 4, 8
SEEN_LATE = 1
SIZEOF_EVENT = 280


def total(value, width):
    if value < 0xff:
        return bytes([value])
    return b"\xff" + value.to_bytes(width, "little")


def record(kind, conn, backend, reason=0, closed_by=0, flags=0, srtt=0, duration=0,
           sent=0, received=0, requests=0, retransmits=0, resets_sent=0, resets_received=0,
           turns=(), response=0):
    out = bytes([0, kind, reason, closed_by, flags, conn, backend])
    out += total(srtt, 4) + total(duration, 8) + total(sent, 8) + total(received, 8)
    out += total(requests, 4) + total(retransmits, 4) + total(resets_sent, 4)
    out += total(resets_received, 4) + bytes([len(turns)])
    for turn in turns:
        ttfb, srtt_status = turn[0], turn[1]
        prev_response = turn[2] if len(turn) > 2 else 0
        out += total(ttfb, 4) + total(srtt_status, 4) + total(prev_response, 4)
    out += total(response, 4)
    return out


def raw(payload):
    return bytes([17]) + struct.pack("<H", len(payload)) + payload


def advance(ms):
    return bytes([18]) + struct.pack("<H", ms // 4)


MAINTAIN, SCRAPE, DRAIN = bytes([19]), bytes([22]), bytes([23])
BEGIN_SWEEP, END_SWEEP, ABORT_SWEEP, INTERVAL = (bytes([20, i]) for i in range(4))


def pools(selector):
    return bytes([21, selector])


SEEDS = {
    "lifecycle": record(CONNECTED, 1, 1, duration=250000)
    + record(TURN, 1, 0, turns=[(1200, 80 | 200 << 22), (900, 503 << 22, 1500)])
    + record(PROGRESS, 1, 1, sent=200, received=100000, requests=2) + SCRAPE
    + record(CLOSED, 1, 1, closed_by=1, flags=EVF_CLOSED | EVF_FINAL, duration=5000000,
             sent=300, received=150000, requests=3, srtt=90, response=2000) + SCRAPE + advance(61000) + MAINTAIN,
    "overflow": b"".join(record(CONNECTED, c, c) for c in range(12)) + SCRAPE
    + b"".join(record(CLOSED, c, c, flags=EVF_CLOSED) for c in range(12)) + advance(65000)
    + MAINTAIN + record(CONNECTED, 20, 30) + SCRAPE,
    "sweep": record(CONNECTED, 2, 3) + record(ADOPTED, 3, 4, flags=EVF_ADOPTED)
    + record(CONNECTED, 4, 5, flags=EVF_NOT_SWEPT) + INTERVAL + BEGIN_SWEEP
    + record(PROGRESS, 2, 3, sent=10) + END_SWEEP + SCRAPE + INTERVAL + DRAIN,
    "failures": record(CONNECT_FAILED, 5, 6, reason=0, retransmits=3)
    + record(CONNECT_FAILED, 6, 6, reason=9) + record(RESET_AFTER_CLOSE, 7, 6)
    + record(CONNECTED, 8, 6, reason=SEEN_LATE) + record(CLOSED, 8, 6, reason=SEEN_LATE)
    + record(PROGRESS, 8, 6, flags=EVF_CLOSED, sent=5) + pools(0x86) + SCRAPE + pools(0) + SCRAPE,
    "raw_records": raw(bytes([CONNECTED, 0, 0, 0]) + bytes(SIZEOF_EVENT - 4)) + raw(b"\x04short")
    + raw(bytes([0x09]) + bytes(SIZEOF_EVENT + 10)) + SCRAPE + ABORT_SWEEP,
    "huge_totals": record(CONNECTED, 9, 7) + record(PROGRESS, 9, 7, sent=2**63, received=2**64 - 1)
    + record(CONNECTED, 10, 7) + record(PROGRESS, 10, 7, sent=2**63 + 5) + SCRAPE
    + record(TURN, 9, 0, turns=[(2**32 - 1, 2**32 - 1)] * 16) + SCRAPE,
}

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "aggregator")
os.makedirs(here, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)
