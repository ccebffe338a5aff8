#!/usr/bin/env python3
"""Abuse of the metrics endpoint, or the honest scraper beside it.

  endpoint_abuse.py HOST:PORT SECONDS abuse|honest

For SECONDS, "abuse" runs at once:
  * 500 slowloris connections (10 per source address, 127.0.9.1-50): a
    partial request header, one more byte every second;
  * 1,000 concurrent scrapers of /metrics (10 per address, 127.0.10.1-100),
    each reading whole pages as fast as it can;
  * 20 connections sending a 1 MiB request header, and 20 sending random
    bytes (127.0.11.x).
"honest" is the honest scraper, from 127.0.0.1: /healthz and /metrics in
turn every 200 ms on a kept-alive connection, each timed. It runs as a process of its own, as
Prometheus would: inside the abuse's event loop, its 1,540 busy tasks
delayed the honest request itself by up to 1.9 s between connecting and
sending the header, which timed the client rather than the server.
Prints one line of KEY=VALUE figures; exit 0 whatever they are (the caller
checks them).
"""
import asyncio
import os
import sys
import time

HOST, PORT = sys.argv[1].rsplit(":", 1)
PORT = int(PORT)
SECONDS = float(sys.argv[2])
ROLE = sys.argv[3]
deadline = time.monotonic() + SECONDS
stats = {"abusive_pages": 0, "abusive_refused": 0, "big_header_431": 0, "big_header_closed": 0,
         "honest_ok": 0, "honest_failed": 0, "honest_max_ms": 0.0, "slowloris_open_max": 0}
slowloris_open = 0


async def connect(source):
    return await asyncio.wait_for(
        asyncio.open_connection(HOST, PORT, local_addr=(source, 0)), timeout=5)


async def slowloris(source):
    global slowloris_open
    while time.monotonic() < deadline:
        try:
            reader, writer = await connect(source)
        except (OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.5)
            continue
        slowloris_open += 1
        stats["slowloris_open_max"] = max(stats["slowloris_open_max"], slowloris_open)
        try:
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            while time.monotonic() < deadline:
                await asyncio.sleep(1)
                writer.write(b"X")
                await writer.drain()
        except OSError:
            pass
        finally:
            slowloris_open -= 1
            writer.close()


async def read_response(reader, closing=None):
    """Reads one HTTP/1.1 response; returns its status code. Appends to
    `closing` when the response says the server closes the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        if name.strip().lower() == b"connection" and value.strip().lower() == b"close":
            if closing is not None:
                closing.append(True)
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
    return status


async def scraper(source):
    while time.monotonic() < deadline:
        try:
            reader, writer = await connect(source)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if await asyncio.wait_for(read_response(reader), timeout=10) == 200:
                stats["abusive_pages"] += 1
            writer.close()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            stats["abusive_refused"] += 1
            await asyncio.sleep(0.1)


async def big_header(source):
    while time.monotonic() < deadline:
        try:
            reader, writer = await connect(source)
            writer.write(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
            await writer.drain()
            status = await asyncio.wait_for(read_response(reader), timeout=10)
            stats["big_header_431" if status == 431 else "big_header_closed"] += 1
            writer.close()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            stats["big_header_closed"] += 1
            await asyncio.sleep(0.2)


async def noise(source):
    while time.monotonic() < deadline:
        try:
            reader, writer = await connect(source)
            writer.write(os.urandom(4096))
            await writer.drain()
            await asyncio.wait_for(reader.read(4096), timeout=10)
            writer.close()
        except (OSError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.05)


async def honest():
    """Like Prometheus (Go's HTTP client), keeps its connection alive between
    requests, opens another when the server closes it, and sends a request
    again on a new connection once when a kept-alive one turns out to have
    been closed before any response (at the cap the server drops idle
    connections first)."""
    path = [b"/healthz", b"/metrics"]
    i = 0
    conn = None
    await asyncio.sleep(1)  # the abuse is in full swing
    while time.monotonic() < deadline:
        start = time.monotonic()
        stage = "connect"
        try:
            request = b"GET " + path[i % 2] + b" HTTP/1.1\r\nHost: x\r\n\r\n"
            status = None
            if conn is not None:
                try:
                    conn[1].write(request)
                    status = await asyncio.wait_for(read_response(conn[0], closing), timeout=5)
                except (OSError, asyncio.IncompleteReadError) as e:
                    if isinstance(e, asyncio.IncompleteReadError) and e.partial:
                        raise
                    stats["honest_retried"] = stats.get("honest_retried", 0) + 1
                    conn[1].close()
                    conn = None
            if status is None:
                conn = await connect("127.0.0.1")
                stage = "response"
                conn[1].write(request)
                status = await asyncio.wait_for(read_response(conn[0], closing), timeout=5)
            writer = conn[1]
            ms = (time.monotonic() - start) * 1000
            stats["honest_max_ms"] = max(stats["honest_max_ms"], ms)
            stats["honest_ok" if status == 200 and ms <= 1000 else "honest_failed"] += 1
            if ms > 1000:
                stats["honest_slow"] = stats.get("honest_slow", 0) + 1
            if closing:
                closing.clear()
                writer.close()
                conn = None
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
            stats["honest_failed"] += 1
            key = f"honest_failed_at_{stage}_{type(e).__name__}"
            stats[key] = stats.get(key, 0) + 1
            if conn is not None:
                conn[1].close()
                conn = None
        i += 1
        await asyncio.sleep(0.2)


closing = []  # read_response appends to it when the server closes the connection


async def main():
    if ROLE == "honest":
        await honest()
        for key in ("abusive_pages", "abusive_refused", "big_header_431", "big_header_closed",
                    "slowloris_open_max"):
            del stats[key]
    else:
        await abuse()
        for key in ("honest_ok", "honest_failed", "honest_max_ms"):
            del stats[key]
    print(" ".join(f"{k}={round(v, 1) if isinstance(v, float) else v}" for k, v in stats.items()))


async def abuse():
    tasks = [slowloris(f"127.0.9.{1 + n // 10}") for n in range(500)]
    tasks += [scraper(f"127.0.10.{1 + n // 10}") for n in range(1000)]
    tasks += [big_header(f"127.0.11.{1 + n}") for n in range(20)]
    tasks += [noise(f"127.0.11.{101 + n}") for n in range(20)]
    await asyncio.gather(*tasks)


asyncio.run(main())
