"""What the lab reads to compare against: the agent's and HAProxy's /metrics, the
proxies' and backends' own logs, and the kernel's established connections (ss)."""
import json
import os
import re
import subprocess
import time
import urllib.request

from topology import AGENT, HAP_STATS

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


def haproxy_metrics():
    return parse_metrics(fetch(f"http://{HAP_STATS}/metrics"))


def msum(ms, name, **want):
    return sum(v for n, l, v in ms if n == name and all(l.get(k) == x for k, x in want.items()))


def buckets(ms, name, **want):
    """[(le, cumulative count)] sorted by le."""
    out = [(float(l["le"]), v) for n, l, v in ms
           if n == name + "_bucket" and all(l.get(k) == x for k, x in want.items())]
    return sorted(out)


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
