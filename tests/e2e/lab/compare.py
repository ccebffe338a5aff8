"""The lab's three comparisons: after the main load (check_main), in Prometheus
(check_prom), and across an agent restart (check_restart)."""
import json
import math
import re
import urllib.parse

from checks import (Checks, bucket_of, fmt, hist_quantile, lifecycle_checks, mean_check, quantile_checks,
                    started_check, table, true_quantile)
from readings import (agent_metrics, backend_nginx_stats, buckets, fetch, hap_server, haproxy_metrics,
                      metrics_with_ss, msum, proxy_nginx_stats, python_stats, read_lines, sk_backend)
from topology import BACKENDS, BY_KEY, PROM
from wire import pcap_turns


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
