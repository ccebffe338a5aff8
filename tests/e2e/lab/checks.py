"""Assertions and their report: each check records sockeye's figure, the reference's
and where the reference came from, and the report prints them as one table."""
import math

from topology import BY_KEY


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


def table(rows, header):
    rows = [tuple(fmt(c) for c in r) for r in rows]
    w = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(f"{str(c):>{w[i]}}" if i > 1 else f"{str(c):<{w[i]}}" for i, c in enumerate(r))
    print(line(header))
    print("  ".join("-" * x for x in w))
    for r in rows:
        print(line(r))


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


def lifecycle_checks(c, key, a, sk, rst, ss_now):
    """Open connections agree with the kernel (ss), every established connection is
    either still open or closed, and connections the backend reset count as closed
    by the remote side."""
    c.eq(key, "connections active", sk["active"], ss_now[a], "ss: established to this backend")
    c.eq(key, "closed = established - active", sk["closed"], sk["est"] - sk["active"], "agent's own counters")
    if rst is not None:
        c.eq(key, "closed by remote", sk["closed_remote"], rst, "backend's SO_LINGER 0 closes")
