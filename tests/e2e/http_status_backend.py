#!/usr/bin/env python3
"""HTTP/1.1 backends for tests/e2e/http_status.sh, one behaviour per address.

  http_status_backend.py ADDR:PORT=BEHAVIOUR...

BEHAVIOUR is a status code (answers every request with it and a 5-byte body),
CODE@MS (answers with CODE after MS milliseconds), "slow" (200: the headers at
once, the body 200 ms later) or "mute" (reads the request and never answers).
Keep-alive; one request at a time per connection.
"""
import asyncio
import sys

BODY = b"hello"


class Conn(asyncio.Protocol):
    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.buf = b""

    def connection_made(self, transport):
        self.t = transport

    def data_received(self, data):
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            self.buf = self.buf[length:]
            self.answer()

    def answer(self):
        if self.behaviour == "mute":
            return
        code, _, delay = self.behaviour.partition("@")
        if delay:
            asyncio.get_running_loop().call_later(int(delay) / 1000, self.reply, code)
        else:
            self.reply(code)

    def reply(self, code):
        code = 200 if code == "slow" else int(code)
        head = (f"HTTP/1.1 {code} X\r\nContent-Length: {len(BODY)}\r\n"
                "Content-Type: text/plain\r\n\r\n").encode()
        if self.behaviour == "slow":
            self.t.write(head)
            asyncio.get_running_loop().call_later(0.2, self.t.write, BODY)
        else:
            self.t.write(head + BODY)


async def main():
    servers = []
    for spec in sys.argv[1:]:
        address, behaviour = spec.split("=")
        host, port = address.rsplit(":", 1)
        servers.append(await asyncio.get_running_loop().create_server(
            lambda b=behaviour: Conn(b), host, int(port), reuse_address=True))
    await asyncio.gather(*(s.serve_forever() for s in servers))


asyncio.run(main())
