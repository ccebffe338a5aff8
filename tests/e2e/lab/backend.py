#!/usr/bin/env python3
"""Tiny HTTP/1.1 backends for the proxy lab, with exact byte accounting.

  backend.py delay LOG DELAY_S ADDR:PORT...   answer every request after DELAY_S
  backend.py reset LOG WAIT_S ADDR:PORT...    send the headers and part of the
                                              body, wait WAIT_S, then close with
                                              SO_LINGER 0 (the peer gets a RST
                                              mid-response; with WAIT_S 0 the RST
                                              follows the data at once, usually
                                              before the peer has read it)

Every connection and request is logged to LOG as one JSON object per line:
  {"ev":"accept","local":..,"conn":N}
  {"ev":"req","local":..,"conn":N,"req_bytes":..,"resp_bytes":..,"wait":..,
   "after_eof":bool,"rst":bool}
  {"ev":"close","local":..,"conn":N,"rx":..,"tx":..}
req_bytes are the bytes of that request as read from the socket (request line,
headers and Content-Length body), resp_bytes the bytes handed to the kernel for
its response. Requests are served one at a time per connection (no pipelining).
"""
import asyncio
import itertools
import json
import signal
import socket
import struct
import sys
import time

RESP_BODY = 512            # delay mode: response body size
RESET_DECLARED = 65536     # reset mode: Content-Length announced
RESET_SENT = 1000          # reset mode: body bytes actually sent before the RST

_ids = itertools.count(1)


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)

    def __call__(self, **kw):
        self.f.write(json.dumps(kw, sort_keys=True) + "\n")


class Conn(asyncio.Protocol):
    def __init__(self, mode, log, delay):
        self.mode, self.log, self.delay = mode, log, delay
        self.buf = b""
        self.rx = self.tx = 0
        self.busy = False
        self.eof = False
        self.closed = False

    # --- transport callbacks -------------------------------------------------
    def connection_made(self, transport):
        self.t = transport
        self.id = next(_ids)
        host, port = transport.get_extra_info("sockname")[:2]
        self.local = f"{host}:{port}"
        self.log(ev="accept", local=self.local, conn=self.id)

    def data_received(self, data):
        self.rx += len(data)
        self.buf += data
        self.pump()

    def eof_received(self):
        self.eof = True
        if not self.busy:
            self.t.close()
        return True  # keep our side open while a response is pending

    def connection_lost(self, exc):
        self.closed = True
        self.log(ev="close", local=self.local, conn=self.id, rx=self.rx, tx=self.tx)

    # --- request handling ------------------------------------------------------
    def pump(self):
        if self.busy or self.closed:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end + 4]
        clen = 0
        keep = True
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                clen = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
        total = len(head) + clen
        if len(self.buf) < total:
            return
        self.buf = self.buf[total:]
        self.busy = True
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        if self.mode == "delay":
            loop.call_later(self.delay, self.answer, total, keep, started)
        else:
            self.answer_reset(total, started)

    def answer(self, req_bytes, keep, started):
        body = b"d" * RESP_BODY
        resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n"
                % (len(body), b"" if keep else b"Connection: close\r\n")) + body
        sent = 0
        if not self.closed:
            self.t.write(resp)
            sent = len(resp)
            self.tx += sent
        self.log(ev="req", local=self.local, conn=self.id, req_bytes=req_bytes, resp_bytes=sent,
                 wait=round(time.monotonic() - started, 6), after_eof=self.eof, rst=False)
        self.busy = False
        if not keep or self.eof:
            self.t.close()
        else:
            self.pump()

    def answer_reset(self, req_bytes, started):
        resp = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: %d\r\n\r\n" % RESET_DECLARED) + b"r" * RESET_SENT
        self.t.write(resp)
        self.tx += len(resp)

        def rst():
            sock = self.t.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.log(ev="req", local=self.local, conn=self.id, req_bytes=req_bytes,
                     resp_bytes=len(resp), wait=round(time.monotonic() - started, 6),
                     after_eof=self.eof, rst=True)
            self.t.abort()

        if self.delay > 0:
            asyncio.get_running_loop().call_later(self.delay, rst)
        else:
            rst()


async def main():
    mode = sys.argv[1]
    log = Log(sys.argv[2])
    if mode in ("delay", "reset"):
        delay, addrs = float(sys.argv[3]), sys.argv[4:]
    else:
        sys.exit(f"unknown mode {mode}")
    loop = asyncio.get_running_loop()
    servers = []
    for a in addrs:
        host, port = a.rsplit(":", 1)
        servers.append(await loop.create_server(lambda: Conn(mode, log, delay), host, int(port),
                                                reuse_address=True, backlog=256))
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    print(f"backend {mode} listening on {' '.join(addrs)}", flush=True)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main())
