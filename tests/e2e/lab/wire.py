"""Time to first byte on the wire, the lab's independent reference for the agent's
histogram: read back from the tcpdump capture of the slow backends' traffic."""
import os


def pcap_turns(path):
    """Time to first byte on the wire, from a tcpdump capture on lo (nanosecond
    timestamps): per connection to a backend, a turn starts at the first payload
    segment towards the backend after payload came back (or the first one on the
    connection) and ends at the first payload segment from the backend, the same
    definition the agent uses. Returns {backend "ip:port": [seconds, ...]} and
    {backend: turns started}."""
    import struct
    out, started = {}, {}
    if not os.path.exists(path):
        return out, started
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return out, started
    magic = struct.unpack("<I", data[:4])[0]
    endian, scale = {0xa1b2c3d4: ("<", 1e-6), 0xa1b23c4d: ("<", 1e-9)}[magic]
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    l2 = {1: 14, 113: 16, 276: 20, 0: 4}[linktype]
    conns = {}
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        if off + 16 + incl > len(data):
            break  # record still being written
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ts = sec + frac * scale
        ip = pkt[l2:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        tot = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        payload = tot - ihl - doff
        if payload <= 0 and not flags & 0x05:
            continue
        src = "%d.%d.%d.%d" % tuple(ip[12:16])
        dst = "%d.%d.%d.%d" % tuple(ip[16:20])
        if dport == 8080:
            key, backend, towards = (src, sport, dst), f"{dst}:{dport}", True
        elif sport == 8080:
            key, backend, towards = (dst, dport, src), f"{src}:{sport}", False
        else:
            continue
        c = conns.setdefault(key, dict(last=None, start=None, seen={True: -1, False: -1}, closed=False))
        if towards and flags & 0x05:
            c["closed"] = True  # the proxy closed: what the backend sends later never reaches it
        if payload <= 0 or c["closed"] and not towards:
            continue
        end = (seq + payload) & 0xffffffff
        if c["seen"][towards] != -1 and ((end - c["seen"][towards]) & 0xffffffff) > 0x7fffffff:
            continue  # retransmission of data already seen
        c["seen"][towards] = end
        if towards:
            if c["last"] is not True:
                c["start"] = ts
                started[backend] = started.get(backend, 0) + 1
            c["last"] = True
        else:
            if c["last"] is True and c["start"] is not None:
                out.setdefault(backend, []).append(ts - c["start"])
                c["start"] = None
            c["last"] = False
    return out, started
