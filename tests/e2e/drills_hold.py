#!/usr/bin/env python3
# Opens N connections to HOST:PORT, sends R rounds of one HTTP/1.1 request on
# each while all of them stay open, then closes them all. Prints the bytes it
# sent, the bytes of the responses it read, and the requests.
#
#   drills_hold.py HOST:PORT N R
import socket
import sys

REQUEST = b"GET / HTTP/1.1\r\nHost: drill\r\n\r\n"


def receive(sock, data):
    chunk = sock.recv(65536)
    if not chunk:
        sys.exit("drills_hold.py: the server closed a connection mid-response")
    return data + chunk


def response(sock):
    """Reads one response with a Content-Length; returns its size in bytes."""
    data = b""
    while b"\r\n\r\n" not in data:
        data = receive(sock, data)
    head, body = data.split(b"\r\n\r\n", 1)
    lengths = [line.split(b":", 1)[1] for line in head.split(b"\r\n")
               if line.lower().startswith(b"content-length:")]
    if not lengths:
        sys.exit("drills_hold.py: a response without Content-Length")
    while len(body) < int(lengths[0]):
        body = receive(sock, body)
    return len(head) + 4 + len(body)


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(int(sys.argv[2]))]
    sent = received = requests = 0
    for _ in range(int(sys.argv[3])):
        for sock in socks:
            sock.sendall(REQUEST)
            sent += len(REQUEST)
            received += response(sock)
            requests += 1
    for sock in socks:
        sock.close()
    print(sent, received, requests)


main()
