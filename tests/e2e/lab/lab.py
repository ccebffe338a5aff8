#!/usr/bin/env python3
"""Proxy lab helper: topology, config files, and the comparisons.

  lab.py topo VAR                 print a topology value for run.sh
  lab.py render DIR               write nginx/haproxy/prometheus configs and files
  lab.py wait-stable URL SECS     poll the agent until its backend series stop moving
  lab.py mark DIR NAME            record the current length of every log (for phases)
  lab.py ss-count                 established connections to any lab backend
  lab.py check-main DIR           sockeye vs proxies/backends after the main load
  lab.py check-prom DIR SECS      Prometheus queries over the last SECS seconds
  lab.py check-restart DIR        counts of the restarted agent vs the logs since mark
Exit status of the check-* commands: 0 all assertions passed, 1 otherwise.
"""
# One file past the usual ~400 lines on purpose: run.sh calls it as one
# command-line tool, and every subcommand shares the topology (BACKENDS) and
# the metric and log parsers; a check reads with its helpers right above it.
import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

NET = "127.0.77"
AGENT = f"{NET}.1:19581"
PROM = f"{NET}.1:19590"
NGINX = f"{NET}.2"          # nginx reverse proxy listens here
HAPROXY = f"{NET}.3"        # haproxy listens here
HAP_STATS = f"{HAPROXY}:8404"
DELAY = 0.060               # fixed response delay of the slow backends (seconds)
RESET_WAIT = 0.020          # "reset": partial response, RST 20 ms later (peer has read the data)
                            # "reset0": partial response and RST at once (peer reads the data
                            # after the RST has arrived)
SIZES = {"1k": 1000, "64k": 65536, "256k": 262144}

# key, backend address, what serves it, which proxy fronts it, listen port on that proxy
BACKENDS = [
    dict(key="ngx-fast",   addr=f"{NET}.11:8080", kind="nginx",  front="nginx",   port=8011),
    dict(key="ngx-slow",   addr=f"{NET}.12:8080", kind="delay",  front="nginx",   port=8012),
    dict(key="ngx-refuse", addr=f"{NET}.13:8080", kind="refuse", front="nginx",   port=8013),
    dict(key="ngx-reset",  addr=f"{NET}.14:8080", kind="reset",  front="nginx",   port=8014),
    dict(key="ngx-rstnow", addr=f"{NET}.15:8080", kind="reset0", front="nginx",   port=8016),
    # nginx's default: no upstream keep-alive, a new connection per request (nginx closes it)
    dict(key="ngx-close",  addr=f"{NET}.16:8080", kind="nginx",  front="nginx",   port=8017,
         keepalive=False),
    # IPv6: sockeye keys it as an IPv6 address, nginx logs it as $upstream_addr "[::1]:8091"
    dict(key="ngx-v6",     addr="[::1]:8091",     kind="nginx",  front="nginx",   port=8018),
    dict(key="hap-fast",   addr=f"{NET}.21:8080", kind="nginx",  front="haproxy", port=8011, be="be_fast"),
    dict(key="hap-slow",   addr=f"{NET}.22:8080", kind="delay",  front="haproxy", port=8012, be="be_slow"),
    dict(key="hap-refuse", addr=f"{NET}.23:8080", kind="refuse", front="haproxy", port=8013, be="be_refuse"),
    dict(key="hap-reset",  addr=f"{NET}.24:8080", kind="reset",  front="haproxy", port=8014, be="be_reset"),
    dict(key="hap-rstnow", addr=f"{NET}.26:8080", kind="reset0", front="haproxy", port=8016, be="be_rstnow"),
    dict(key="hap-splice", addr=f"{NET}.25:8080", kind="nginx",  front="haproxy-tcp", port=8015, be="tcp_splice"),
    # option http-server-close: HAProxy closes the server connection after every response
    dict(key="hap-close",  addr=f"{NET}.27:8080", kind="nginx",  front="haproxy", port=8017, be="be_close",
         server_close=True),
]
BY_KEY = {b["key"]: b for b in BACKENDS}


def route(key):
    b = BY_KEY[key]
    host = NGINX if b["front"] == "nginx" else HAPROXY
    return f"http://{host}:{b['port']}"


def include(addr):
    """--include for exactly this backend: 127.0.77.11/32:8080, [::1/128]:8091."""
    host, port = addr.rsplit(":", 1)
    if host.startswith("["):
        return f"[{host[1:-1]}/128]:{port}"
    return f"{host}/32:{port}"


def topo(var):
    if var == "includes":
        return " ".join(f"--include {include(b['addr'])}" for b in BACKENDS)
    if var.startswith("addrs:"):
        kind = var.split(":", 1)[1]
        return " ".join(b["addr"] for b in BACKENDS if b["kind"] == kind)
    if var.startswith("route:"):
        return route(var.split(":", 1)[1])
    if var.startswith("addr:"):
        return BY_KEY[var.split(":", 1)[1]]["addr"]
    return {"agent": AGENT, "prom": PROM, "hap_stats": HAP_STATS, "delay": str(DELAY),
            "reset_wait": str(RESET_WAIT)}[var]


# ----------------------------------------------------------------------------- configs

def render(d):
    tmp = f"{d}/tmp"
    for sub in ("www", "bn-tmp", "px-tmp", "prom"):
        os.makedirs(f"{d}/{sub}", exist_ok=True)
    for name, size in SIZES.items():
        with open(f"{d}/www/{name}", "wb") as f:
            f.write(bytes((i * 7 + 13) % 251 for i in range(size)))
    with open(f"{d}/upload", "wb") as f:   # POST body larger than nginx's body buffer
        f.write(b"u" * (1 << 20))
    temps = lambda t: "\n".join(f"  {k}_temp_path {t}/{k};" for k in
                                ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    nginx_backends = [b for b in BACKENDS if b["kind"] == "nginx"]
    listens = "\n".join(f"    listen {b['addr']};" for b in nginx_backends)
    with open(f"{d}/backend-nginx.conf", "w") as f:
        f.write(f"""worker_processes 1;
pid {d}/backend-nginx.pid;
error_log {d}/backend-nginx.error.log notice;
events {{ worker_connections 4096; }}
http {{
  access_log off;
{temps(d + '/bn-tmp')}
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 600s;
  keepalive_requests 1000000;
  log_format lab '$msec|$server_addr:$server_port|$connection|$connection_requests|$request_length|$bytes_sent|$status|$request_uri|$request_completion';
  server {{
{listens}
    root {d}/www;
    access_log {d}/backend-nginx.access.log lab;
    location / {{ }}
  }}
}}
""")
    ups, servers = [], []
    for b in BACKENDS:
        if b["front"] != "nginx":
            continue
        name = b["key"].replace("-", "_")
        pool = """
    keepalive 16;
    keepalive_timeout 600s;
    keepalive_requests 1000000;""" if b.get("keepalive", True) else ""
        ups.append(f"""  upstream {name} {{
    server {b['addr']} max_fails=0;{pool}
  }}""")
        servers.append(f"""  server {{
    listen {NGINX}:{b['port']};
    access_log {d}/proxy-nginx.access.log up;
    location / {{ proxy_pass http://{name}; }}
  }}""")
    nl = "\n"
    with open(f"{d}/proxy-nginx.conf", "w") as f:
        f.write(f"""worker_processes 1;
pid {d}/proxy-nginx.pid;
error_log {d}/proxy-nginx.error.log notice;
events {{ worker_connections 4096; }}
http {{
  access_log off;
{temps(d + '/px-tmp')}
  keepalive_timeout 600s;
  keepalive_requests 1000000;
  sendfile on;
  client_max_body_size 16m;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_next_upstream off;
  proxy_read_timeout 30s;
  log_format up '$msec|$server_port|$status|$upstream_addr|$upstream_status|$upstream_connect_time|$upstream_header_time|$upstream_response_time|$upstream_bytes_sent|$upstream_bytes_received|$request_time|$request_length|$bytes_sent';
{nl.join(ups)}
{nl.join(servers)}
}}
""")
    hap = [f"""global
  maxconn 4000
  nbthread 2

defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 600s

frontend stats
  bind {HAP_STATS}
  http-request use-service prometheus-exporter if {{ path /metrics }}
"""]
    for b in BACKENDS:
        if b["front"] == "haproxy":
            extra = "  retries 2\n  timeout connect 300ms\n" if b["kind"] == "refuse" else ""
            if b.get("server_close"):
                extra += "  option http-server-close\n"
            hap.append(f"""frontend fe_{b['be'][3:]}
  bind {HAPROXY}:{b['port']}
  default_backend {b['be']}

backend {b['be']}
{extra}  server {b['key']} {b['addr']}
""")
        elif b["front"] == "haproxy-tcp":
            hap.append(f"""listen {b['be']}
  mode tcp
  bind {HAPROXY}:{b['port']}
  option splice-request
  option splice-response
  server {b['key']} {b['addr']}
""")
    with open(f"{d}/haproxy.cfg", "w") as f:
        f.write("\n".join(hap))
    with open(f"{d}/prometheus.yml", "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: sockeye
    static_configs:
      - targets: ['{AGENT}']
""")


# ----------------------------------------------------------------------------- parsing

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            continue
        labels = dict(LABEL.findall(m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def fetch(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def agent_metrics():
    return parse_metrics(fetch(f"http://{AGENT}/metrics"))


def msum(ms, name, **want):
    return sum(v for n, l, v in ms if n == name and all(l.get(k) == x for k, x in want.items()))


def buckets(ms, name, **want):
    """[(le, cumulative count)] sorted by le."""
    out = [(float(l["le"]), v) for n, l, v in ms
           if n == name + "_bucket" and all(l.get(k) == x for k, x in want.items())]
    return sorted(out)


def hist_quantile(q, bks):
    """Prometheus' histogram_quantile on cumulative buckets."""
    if not bks or bks[-1][1] == 0:
        return float("nan")
    total = bks[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in bks:
        if c >= rank:
            if math.isinf(le):
                return prev_le
            if le == bks[0][0] and le <= 0:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c) if c > prev_c else le
        prev_le, prev_c = le, c
    return prev_le


def bucket_of(x, bounds):
    """(lower, upper] bucket of the default bounds that holds x."""
    lo = 0.0
    for le in bounds:
        if x <= le:
            return lo, le
        lo = le
    return lo, float("inf")


def true_quantile(q, xs):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def read_lines(path, start=0):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = f.read().splitlines()
    return lines[start:]


def split_multi(s):
    """nginx lists one value per upstream attempt: ', ' between retries, ' : ' between
    internal redirects."""
    return re.split(r", | : ", s)


def num(s):
    return 0.0 if s in ("-", "") else float(s)


def proxy_nginx_stats(d, start=0):
    st = {}
    for line in read_lines(f"{d}/proxy-nginx.access.log", start):
        f = line.split("|")
        if f[3] == "-":
            continue
        cols = [split_multi(x) for x in f[3:10]]
        for addr, status, ct, ht, rt, bs, br in zip(*cols):
            s = st.setdefault(addr, dict(attempts=0, sent=0, recv=0, status={}, header=[],
                                         no_header=0))
            s["attempts"] += 1
            s["sent"] += int(num(bs))
            s["recv"] += int(num(br))
            s["status"][status] = s["status"].get(status, 0) + 1
            if ht != "-":
                s["header"].append(float(ht))
            else:
                s["no_header"] += 1
    return st


def backend_nginx_stats(d, start=0, known_conns=None):
    st = {}
    for line in read_lines(f"{d}/backend-nginx.access.log", start):
        f = line.split("|")
        host, port = f[1].rsplit(":", 1)  # $server_addr:$server_port, IPv6 without brackets
        addr = f"[{host}]:{port}" if ":" in host else f[1]
        s = st.setdefault(addr, dict(requests=0, rx=0, tx=0, conns=set(), incomplete=0))
        s["requests"] += 1
        s["rx"] += int(f[4])
        s["tx"] += int(f[5])
        s["conns"].add(f[2])
        if f[8] != "OK":
            s["incomplete"] += 1
    for addr, s in st.items():
        s["new_conns"] = len(s["conns"] - (known_conns or {}).get(addr, set()))
    return st


def python_stats(d, start=None):
    st = {}
    for name in ("backend-delay.log", "backend-reset.log", "backend-reset0.log"):
        for line in read_lines(f"{d}/{name}", (start or {}).get(name, 0)):
            e = json.loads(line)
            s = st.setdefault(e["local"], dict(requests=0, rx=0, tx=0, accepts=0, closes=0, rst=0,
                                               waits=[], after_eof=0))
            if e["ev"] == "accept":
                s["accepts"] += 1
            elif e["ev"] == "close":
                s["closes"] += 1
            else:
                s["requests"] += 1
                s["rx"] += e["req_bytes"]
                s["tx"] += e["resp_bytes"]
                s["waits"].append(e["wait"])
                s["rst"] += e["rst"]
                s["after_eof"] += e["after_eof"]
    return st


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


def haproxy_metrics():
    return parse_metrics(fetch(f"http://{HAP_STATS}/metrics"))


# ----------------------------------------------------------------------------- checks

class Checks:
    def __init__(self, title):
        self.title = title
        self.rows = []

    def eq(self, backend, what, sockeye, reference, ref_name):
        ok = sockeye == reference
        self.rows.append((ok, backend, what, fmt(sockeye), fmt(reference), ref_name))
        return ok

    def cond(self, backend, what, ok, sockeye, reference, ref_name):
        self.rows.append((bool(ok), backend, what, fmt(sockeye), fmt(reference), ref_name))
        return ok

    def report(self):
        print(f"\n=== assertions: {self.title} ===")
        w = [max(len(str(r[i])) for r in self.rows + [(0, "backend", "what", "sockeye", "reference", "")])
             for i in range(6)]
        print(f"{'':4} {'backend':<{w[1]}}  {'what':<{w[2]}}  {'sockeye':>{w[3]}}  {'reference':>{w[4]}}  source")
        for ok, b, what, s, r, src in self.rows:
            print(f"{'ok' if ok else 'FAIL':4} {b:<{w[1]}}  {what:<{w[2]}}  {s:>{w[3]}}  {r:>{w[4]}}  {src}")
        failed = sum(1 for r in self.rows if not r[0])
        print(f"{self.title}: {len(self.rows) - failed} passed, {failed} failed")
        return failed


def fmt(x):
    if isinstance(x, float):
        if x == int(x) and abs(x) < 1e15:
            return str(int(x))
        return f"{x:.6g}"
    return str(x)


def sk_backend(ms, addr):
    g = lambda n, **kw: msum(ms, n, backend=addr, **kw)
    d = dict(
        est=g("sockeye_backend_connections_established_total"),
        refused=g("sockeye_backend_connect_failures_total", reason="refused"),
        fail_other=sum(g("sockeye_backend_connect_failures_total", reason=r)
                       for r in ("timeout", "unreachable", "reset", "other")),
        active=g("sockeye_backend_connections_active"),
        closed=g("sockeye_backend_connections_closed_total"),
        closed_remote=g("sockeye_backend_connections_closed_total", closed_by="remote"),
        sent=g("sockeye_backend_sent_bytes_total"),
        recv=g("sockeye_backend_received_bytes_total"),
        req=g("sockeye_backend_requests_total"),
        ttfb_sum=g("sockeye_backend_time_to_first_byte_seconds_sum"),
        ttfb_count=g("sockeye_backend_time_to_first_byte_seconds_count"),
        rst_in=g("sockeye_backend_resets_received_total"),
        rst_out=g("sockeye_backend_resets_sent_total"),
        retrans=g("sockeye_backend_retransmits_total"),
    )
    d["ttfb"] = buckets(ms, "sockeye_backend_time_to_first_byte_seconds", backend=addr)
    return d


def hap_server(hm, be):
    g = lambda n, **kw: msum(hm, n, proxy=be, **kw)
    return dict(
        responses=g("haproxy_server_http_responses_total"),
        bytes_in=g("haproxy_server_bytes_in_total"),
        bytes_out=g("haproxy_server_bytes_out_total"),
        conn_err=g("haproxy_server_connection_errors_total"),
        attempts=g("haproxy_server_connection_attempts_total"),
        reuses=g("haproxy_server_connection_reuses_total"),
        retries=g("haproxy_server_retry_warnings_total"),
        sessions=g("haproxy_server_sessions_total"),
        resp_err=g("haproxy_server_response_errors_total"),
    )


def table(rows, header):
    rows = [tuple(fmt(c) for c in r) for r in rows]
    w = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(f"{str(c):>{w[i]}}" if i > 1 else f"{str(c):<{w[i]}}" for i, c in enumerate(r))
    print(line(header))
    print("  ".join("-" * x for x in w))
    for r in rows:
        print(line(r))


def mean_check(c, key, sk, ref_times, ref_name):
    """Mean TTFB (_sum/_count) within max(1 ms, 5 %) of the reference mean."""
    if not ref_times or sk["ttfb_count"] == 0:
        c.cond(key, "ttfb observations", False, sk["ttfb_count"], len(ref_times), ref_name)
        return
    sk_mean = sk["ttfb_sum"] / sk["ttfb_count"]
    ref_mean = sum(ref_times) / len(ref_times)
    tol = max(0.001, 0.05 * ref_mean)
    c.cond(key, f"mean ttfb (tol {tol * 1000:.2f} ms)", abs(sk_mean - ref_mean) <= tol,
           round(sk_mean, 6), round(ref_mean, 6), ref_name)


def started_check(c, key, sk, started):
    c.eq(key, "requests", sk["req"], started.get(BY_KEY[key]["addr"], 0), "turns started on the wire (tcpdump)")


def quantile_checks(c, key, sk, wire):
    """histogram_quantile(0.5 / 0.99) of the agent's histogram falls in the bucket that
    holds the true quantile (measured on the wire); the observation count equals the
    turns answered on the wire."""
    c.eq(key, "ttfb observations", sk["ttfb_count"], len(wire), "turns answered before the proxy closed (tcpdump)")
    if not wire:
        return
    bounds = [le for le, _ in sk["ttfb"] if not math.isinf(le)]
    for q in (0.5, 0.99):
        est = hist_quantile(q, sk["ttfb"])
        tq = true_quantile(q, wire)
        lo, hi = bucket_of(tq, bounds)
        c.cond(key, f"ttfb p{int(q * 100)} in bucket ({lo:g},{hi:g}]", lo < est <= hi,
               round(est, 6), round(tq, 6), "true quantile on the wire")


def bucket_table(ms, px, py, wire):
    """Per-bucket counts of the slow backends: agent vs wire vs the proxy's/backend's view."""
    for b in BACKENDS:
        if b["kind"] != "delay":
            continue
        a = b["addr"]
        sk = sk_backend(ms, a)
        if b["front"] == "nginx":
            other, oname = px.get(a, {}).get("header", []), "nginx $upstream_header_time"
        else:
            other, oname = py.get(a, {}).get("waits", []), "backend's own delay"
        w = wire.get(a, [])
        print(f"\n{b['key']} {a}: time to first byte per bucket (non-cumulative)")
        rows = []
        prev_le, prev_c = 0.0, 0.0
        for le, cum in sk["ttfb"]:
            n_sk = cum - prev_c
            inb = lambda xs: sum(1 for x in xs if prev_le < x <= le)
            n_w, n_o = inb(w), inb(other)
            if n_sk or n_w or n_o:
                rows.append((f"({prev_le:g},{le:g}]", "", fmt(n_sk), n_w, n_o))
            prev_le, prev_c = le, cum
        q = lambda xs, p: f"{true_quantile(p, xs) * 1000:.3f}" if xs else "-"
        rows.append(("p50 ms", "", f"{hist_quantile(0.5, sk['ttfb']) * 1000:.3f}", q(w, 0.5), q(other, 0.5)))
        rows.append(("p99 ms", "", f"{hist_quantile(0.99, sk['ttfb']) * 1000:.3f}", q(w, 0.99), q(other, 0.99)))
        mean = lambda xs: f"{sum(xs) / len(xs) * 1000:.3f}" if xs else "-"
        rows.append(("mean ms", "", f"{sk['ttfb_sum'] / sk['ttfb_count'] * 1000:.3f}" if sk["ttfb_count"] else "-",
                     mean(w), mean(other)))
        table(rows, ("bucket", "", "sockeye", "wire (tcpdump)", oname))


def metrics_with_ss(addrs):
    """The agent's metrics together with the kernel's count of established connections
    per backend, taken so that no connection opened or closed from a sweep interval
    before the scrape until after it (proxies close idle pooled connections at any time)."""
    for _ in range(5):
        before = {a: ss_count(a) for a in addrs}
        time.sleep(1.2)
        ms = agent_metrics()
        after = {a: ss_count(a) for a in addrs}
        if before == after:
            return ms, after
        print(f"connections changed while sampling ({before} -> {after}), sampling again")
    return ms, {a: None for a in addrs}


def lifecycle_checks(c, key, a, sk, rst, ss_now):
    """Open connections agree with the kernel (ss), every established connection is
    either still open or closed, and connections the backend reset count as closed
    by the remote side."""
    c.eq(key, "connections active", sk["active"], ss_now[a], "ss: established to this backend")
    c.eq(key, "closed = established - active", sk["closed"], sk["est"] - sk["active"], "agent's own counters")
    if rst is not None:
        c.eq(key, "closed by remote", sk["closed_remote"], rst, "backend's SO_LINGER 0 closes")


def check_main(d):
    ms, ss_now = metrics_with_ss([b["addr"] for b in BACKENDS])
    hm = haproxy_metrics()
    px = proxy_nginx_stats(d)
    bn = backend_nginx_stats(d)
    py = python_stats(d)
    wire, wire_started = pcap_turns(f"{d}/slow.pcap")
    c = Checks("main load")
    rows = []
    for b in BACKENDS:
        a, key = b["addr"], b["key"]
        sk = sk_backend(ms, a)
        ref_b = bn.get(a) if b["kind"] == "nginx" else py.get(a)
        ref_b = ref_b or dict(requests=0, rx=0, tx=0, conns=set(), accepts=0, rst=0, waits=[],
                              new_conns=0, after_eof=0, incomplete=0)
        backend_conns = len(ref_b["conns"]) if b["kind"] == "nginx" else ref_b["accepts"]
        if b["front"] == "nginx":
            p = px.get(a, dict(attempts=0, sent=0, recv=0, status={}, header=[], no_header=0))
            rows.append((key, a, "sockeye", sk["req"], sk["sent"], sk["recv"], sk["est"], sk["refused"],
                         sk["rst_in"], ""))
            rows.append(("", "", "nginx $upstream_*", p["attempts"], p["sent"], p["recv"], "", "",
                         "", "status " + ",".join(f"{k}:{v}" for k, v in sorted(p["status"].items()))))
            rows.append(("", "", "backend's own log", ref_b["requests"], ref_b["rx"], ref_b["tx"],
                         backend_conns, "", ref_b.get("rst", ""), ""))
            lifecycle_checks(c, key, a, sk, ref_b["rst"] if b["kind"].startswith("reset") else None, ss_now)
            if b["kind"] == "refuse":
                c.eq(key, "connect failures refused", sk["refused"], p["attempts"],
                     "nginx log entries for this upstream")
                c.eq(key, "  (those entries all 502)", p["status"].get("502", 0), p["attempts"],
                     "nginx $upstream_status")
                c.eq(key, "connections established", sk["est"], 0, "nothing listens")
                c.eq(key, "requests", sk["req"], 0, "nothing listens")
                continue
            c.eq(key, "requests", sk["req"], p["attempts"], "nginx upstream attempts")
            c.eq(key, "sent bytes", sk["sent"], p["sent"], "sum $upstream_bytes_sent")
            c.eq(key, "received bytes", sk["recv"], p["recv"], "sum $upstream_bytes_received")
            c.eq(key, "connections established", sk["est"], backend_conns,
                 "connections the backend accepted")
            c.eq(key, "connect failures", sk["refused"] + sk["fail_other"], 0, "")
            if b["kind"].startswith("reset"):
                c.eq(key, "resets received", sk["rst_in"], ref_b["rst"], "backend's SO_LINGER 0 closes")
            if b["kind"] == "delay":
                mean_check(c, key, sk, p["header"], "nginx $upstream_header_time")
                mean_check(c, key, sk, wire.get(a, []), "wire (tcpdump)")
                quantile_checks(c, key, sk, wire.get(a, []))
                started_check(c, key, sk, wire_started)
        else:
            h = hap_server(hm, b["be"])
            rows.append((key, a, "sockeye", sk["req"], sk["sent"], sk["recv"], sk["est"], sk["refused"],
                         sk["rst_in"], ""))
            hap_new = h["attempts"] - h["conn_err"] - h["retries"]
            rows.append(("", "", "haproxy exporter", h["responses"] if b["front"] == "haproxy" else "-",
                         h["bytes_in"], h["bytes_out"], hap_new,
                         h["conn_err"], "", f"attempts {fmt(h['attempts'])} reuses {fmt(h['reuses'])} "
                         f"retries {fmt(h['retries'])} resp_err {fmt(h['resp_err'])}; bytes_in/out not asserted"))
            rows.append(("", "", "backend's own log", ref_b["requests"], ref_b["rx"], ref_b["tx"],
                         backend_conns, "", ref_b.get("rst", ""),
                         f"after_eof {ref_b['after_eof']}" if b["kind"] != "nginx"
                         else f"incomplete {ref_b['incomplete']}"))
            lifecycle_checks(c, key, a, sk, ref_b["rst"] if b["kind"].startswith("reset") else None, ss_now)
            if b["kind"] == "refuse":
                c.eq(key, "connect failures refused", sk["refused"], h["attempts"],
                     "haproxy_server_connection_attempts_total")
                c.eq(key, "  (= errors + retries)", h["conn_err"] + h["retries"], h["attempts"],
                     "haproxy connection_errors + retry_warnings")
                c.eq(key, "connections established", sk["est"], 0, "nothing listens")
                c.eq(key, "requests", sk["req"], 0, "nothing listens")
                continue
            if b["front"] == "haproxy":
                c.eq(key, "requests", sk["req"], h["responses"], "sum haproxy_server_http_responses_total")
            c.eq(key, "requests", sk["req"], ref_b["requests"], "backend's request log")
            c.eq(key, "sent bytes", sk["sent"], ref_b["rx"],
                 "backend $request_length" if b["kind"] == "nginx" else "backend bytes read")
            c.eq(key, "received bytes", sk["recv"], ref_b["tx"],
                 "backend $bytes_sent" if b["kind"] == "nginx" else "backend bytes written")
            c.eq(key, "connections established", sk["est"], hap_new,
                 "haproxy connection_attempts - errors - retries")
            c.eq(key, "connect failures", sk["refused"] + sk["fail_other"], 0, "")
            if b["kind"].startswith("reset"):
                c.eq(key, "resets received", sk["rst_in"], ref_b["rst"], "backend's SO_LINGER 0 closes")
            if b["kind"] == "delay":
                mean_check(c, key, sk, wire.get(a, []), "wire (tcpdump)")
                quantile_checks(c, key, sk, wire.get(a, []))
                started_check(c, key, sk, wire_started)
    lost = msum(ms, "sockeye_events_lost_total")
    c.eq("(agent)", "events lost", lost, 0, "sockeye_events_lost_total")
    print("\n=== per-backend numbers after the main load ===")
    table(rows, ("backend", "address", "source", "requests", "sent B", "received B", "conns", "refused",
                 "RSTs in", "notes"))
    # latency side by side
    print("\n=== time to first byte ===")
    lat = []
    for b in BACKENDS:
        sk = sk_backend(ms, b["addr"])
        if sk["ttfb_count"] == 0:
            continue
        mean = sk["ttfb_sum"] / sk["ttfb_count"]
        ref = ""
        if b["front"] == "nginx":
            hs = px.get(b["addr"], {}).get("header", [])
            if hs:
                ref = f"nginx mean $upstream_header_time {sum(hs) / len(hs) * 1000:.3f} ms (n={len(hs)})"
        elif b["front"] == "haproxy":
            avg = msum(hm, "haproxy_server_response_time_average_seconds", proxy=b["be"])
            ref = f"haproxy response_time_average {avg * 1000:.3f} ms (last 1024)"
        lat.append((b["key"], b["addr"], int(sk["ttfb_count"]), f"{mean * 1000:.3f}",
                    f"{hist_quantile(0.5, sk['ttfb']) * 1000:.3f}", f"{hist_quantile(0.99, sk['ttfb']) * 1000:.3f}",
                    ref))
    table(lat, ("backend", "address", "n", "mean ms", "p50 ms", "p99 ms", "proxy's own"))
    bucket_table(ms, px, py, wire)
    return c.report()


def prom_query(q):
    url = f"http://{PROM}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    r = json.loads(fetch(url))
    if r.get("status") != "success":
        raise RuntimeError(f"prometheus: {r}")
    return {s["metric"].get("backend", ""): float(s["value"][1]) for s in r["data"]["result"]}


def check_prom(d, secs):
    ms = agent_metrics()
    px = proxy_nginx_stats(d)
    py = python_stats(d)
    c = Checks("prometheus")
    w = f"{int(secs)}s"
    rate = prom_query(f"rate(sockeye_backend_requests_total[{w}])")
    p99 = prom_query("histogram_quantile(0.99, sum by (le, backend) "
                     f"(rate(sockeye_backend_time_to_first_byte_seconds_bucket[{w}])))")
    print(f"\n=== Prometheus answers (window {w}) ===")
    rows = []
    for b in BACKENDS:
        a = b["addr"]
        total = msum(ms, "sockeye_backend_requests_total", backend=a)
        r = rate.get(a)
        rows.append((b["key"], a, fmt(total), "absent" if r is None else f"{r:.3f}",
                     "" if r is None else f"{r * secs:.1f}",
                     "" if p99.get(a) is None or math.isnan(p99[a]) else f"{p99[a] * 1000:.3f}"))
        if b["kind"] == "refuse":
            c.cond(b["key"], f"rate[{w}] is 0", r == 0.0, r, 0, "no connection ever opened")
            continue
        c.cond(b["key"], f"rate[{w}] > 0", r is not None and r > 0, r, ">0", "load was sent")
        if r is not None:
            # The series exist (primed) before the load, so rate x window ~ all requests
            # counted since; Prometheus' extrapolation stays within a few percent.
            tol = max(3.0, 0.10 * total)
            c.cond(b["key"], f"rate x {w} ~ requests (tol {tol:.0f})", abs(r * secs - total) <= tol,
                   round(r * secs, 1), total, "agent's requests_total")
    bounds = [le for le, _ in buckets(ms, "sockeye_backend_time_to_first_byte_seconds",
                                      backend=BY_KEY["ngx-slow"]["addr"]) if not math.isinf(le)]
    wire, _ = pcap_turns(f"{d}/slow.pcap")
    for key in ("ngx-slow", "hap-slow"):
        ref, ref_name = wire.get(BY_KEY[key]["addr"], []), "true p99 on the wire (tcpdump)"
        got = p99.get(BY_KEY[key]["addr"], float("nan"))
        tq = true_quantile(0.99, ref)
        lo, hi = bucket_of(tq, bounds)
        c.cond(key, f"promql p99 ttfb in ({lo:g},{hi:g}]", lo < got <= hi, round(got, 6), round(tq, 6), ref_name)
    table(rows, ("backend", "address", "requests_total", "rate/s", "rate x window", "p99 ttfb ms"))
    return c.report()


def mark(d, name):
    m = {}
    for f in ("proxy-nginx.access.log", "backend-nginx.access.log", "backend-delay.log", "backend-reset.log",
              "backend-reset0.log"):
        m[f] = len(read_lines(f"{d}/{f}"))
    with open(f"{d}/mark-{name}.json", "w") as f:
        json.dump(m, f)


def ss_count(*addrs):
    n = 0
    for addr in addrs:
        out = subprocess.run(["ss", "-Htn", "state", "established", "dst", addr],
                             capture_output=True, text=True).stdout
        n += len([l for l in out.splitlines() if l.strip()])
    return n


def check_restart(d):
    with open(f"{d}/mark-restart.json") as f:
        m = json.load(f)
    ms, ss_now = metrics_with_ss([BY_KEY[k]["addr"] for k in ("ngx-fast", "ngx-slow")])
    px = proxy_nginx_stats(d, m["proxy-nginx.access.log"])
    # connections the backend nginx had seen before the mark
    before = {}
    for line in read_lines(f"{d}/backend-nginx.access.log")[:m["backend-nginx.access.log"]]:
        f = line.split("|")
        before.setdefault(f[1], set()).add(f[2])
    bn = backend_nginx_stats(d, m["backend-nginx.access.log"], before)
    py = python_stats(d, m)
    c = Checks("restart (new agent, traffic after its start)")
    rows = []
    for key in ("ngx-fast", "ngx-slow"):
        a = BY_KEY[key]["addr"]
        sk = sk_backend(ms, a)
        p = px.get(a, dict(attempts=0, sent=0, recv=0, status={}))
        if key == "ngx-fast":
            ref_new = bn.get(a, {}).get("new_conns", 0)
        else:
            ref_new = py.get(a, {}).get("accepts", 0)
        open_now = ss_now[a]
        rows.append((key, a, "sockeye (restarted)", sk["req"], sk["sent"], sk["recv"], sk["est"], sk["active"]))
        rows.append(("", "", "nginx $upstream_*", p["attempts"], p["sent"], p["recv"], ref_new, open_now))
        c.eq(key, "requests", sk["req"], p["attempts"], "nginx upstream attempts since restart")
        c.eq(key, "sent bytes", sk["sent"], p["sent"], "sum $upstream_bytes_sent since restart")
        c.eq(key, "received bytes", sk["recv"], p["recv"], "sum $upstream_bytes_received since restart")
        c.eq(key, "connections established", sk["est"], ref_new, "new connections the backend accepted")
        c.eq(key, "connections active", sk["active"], open_now, "ss: established to this backend")
    print("\n=== restart: numbers of the restarted agent vs the logs since its start ===")
    table(rows, ("backend", "address", "source", "requests", "sent B", "received B", "new conns", "active"))
    c.eq("(agent)", "events lost", msum(ms, "sockeye_events_lost_total"), 0, "sockeye_events_lost_total")
    # adoption: connections followed at start-up vs the lab's open connections (ss, taken
    # just before and just after the start; only compared when those two agree)
    with open(f"{d}/agent2.log") as f:
        adopted = re.search(r"following (\d+) connections that were open at start-up", f.read())
    with open(f"{d}/ss-restart.txt") as f:
        before, after = (int(x) for x in f.read().split())
    if before == after and adopted:
        c.eq("(agent)", "connections adopted at start-up", int(adopted.group(1)), before,
             "ss: established to any lab backend")
    else:
        print(f"adoption count not compared: ss {before} before / {after} after start, agent said "
              f"{adopted.group(0) if adopted else '?'}")
    return c.report()


def wait_stable(url, secs):
    """Poll until every sockeye_backend_* sample is unchanged for 2 consecutive
    seconds; give up after SECS."""
    deadline = time.monotonic() + secs
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        ms = [(n, tuple(sorted(l.items())), v) for n, l, v in parse_metrics(fetch(url))
              if n.startswith("sockeye_backend_") and not n.startswith("sockeye_backend_overflow")]
        snap = sorted(ms)
        now = time.monotonic()
        if snap != last:
            last, since = snap, now
        elif now - since >= 2.0:
            print(f"agent stable for {now - since:.1f}s")
            return 0
        time.sleep(0.25)
    print(f"FAIL: agent metrics still changing after {secs}s")
    return 1


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "topo":
        print(topo(args[0]))
    elif cmd == "render":
        render(args[0])
    elif cmd == "wait-stable":
        sys.exit(wait_stable(args[0], float(args[1])))
    elif cmd == "mark":
        mark(args[0], args[1])
    elif cmd == "ss-count":
        print(ss_count(*(b["addr"] for b in BACKENDS)))
    elif cmd == "check-main":
        sys.exit(1 if check_main(args[0]) else 0)
    elif cmd == "check-prom":
        sys.exit(1 if check_prom(args[0], float(args[1])) else 0)
    elif cmd == "check-restart":
        sys.exit(1 if check_restart(args[0]) else 0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
