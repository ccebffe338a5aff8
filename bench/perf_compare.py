#!/usr/bin/env python3
"""Where the observed proxy cost goes, from bench/proxy_cost.sh's perf profiles.

    PROXY_COST_PERF=/tmp/perf bench/proxy_cost.sh build/sockeye 2 8 | tee out.txt
    bench/perf_compare.py /tmp/perf out.txt

For each round, the system-wide cpu-clock samples of the run without the agent
and the run with it are turned into microseconds per proxied request (requests
= wrk's rate x the run's length, both from proxy_cost.sh's output) and the
difference is summed by kernel/agent function groups. Idle is left out of the
"busy" total. One sample is 1/F s, F being perf's sampling frequency (read
from the profile).
"""
import re
import subprocess
import sys
from collections import defaultdict

# First match wins: a symbol counts in one group only.
GROUPS = [
    ("sockeye BPF programs", r"^bpf_prog_"),
    ("tracepoint/trampoline dispatch", r"bpf_trace_run|__bpf_trace_|__traceiter_|bpf_trampoline"),
    ("cgroup program dispatch", r"__cgroup_bpf_run|bpf_prog_run_array_cg|cgroup_bpf"),
    ("socket storage", r"local_storage|sk_storage|bpf_map_kzalloc|bpf_selem"),
    ("ring buffer", r"ringbuf"),
    ("slab, memcg, RCU frees", r"memcg|slab|kmalloc|kmem_cache|obj_stock|freelist|kfree|rcu"),
    ("idle", r"halt|idle|cpuidle"),
    ("the agent (user space)", r"sockeye|Aggregator"),
]


def samples_by_symbol(path):
    out = subprocess.run(
        ["perf", "report", "-i", path, "--no-children", "--sort", "sym", "-g", "none",
         "-F", "sample,sym", "-q"],
        capture_output=True, text=True, check=True).stdout
    counts = defaultdict(int)
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+\[.\]\s+(.*)", line)
        if m:
            counts[m.group(2).strip()] += int(m.group(1))
    return counts


def sample_frequency(path):
    out = subprocess.run(["perf", "report", "-i", path, "--header-only"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"sample_freq = (\d+)", out)
    return int(m.group(1)) if m else 4000


def group_of(symbol):
    for name, pattern in GROUPS:
        if re.search(pattern, symbol):
            return name
    return "everything else"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: perf_compare.py PERF_DIR proxy_cost_output.txt")
    perf_dir, report = sys.argv[1], open(sys.argv[2]).read()
    seconds = float(re.search(r"-d(\d+)s", report).group(1))
    rounds = re.findall(r"^\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+", report, re.M)
    if not rounds:
        sys.exit("perf_compare.py: no rounds in " + sys.argv[2])
    for rnd, rps_without, rps_with in rounds:
        per_request = {}
        for side, rps in (("without", rps_without), ("with", rps_with)):
            path = f"{perf_dir}/{side}-{rnd}.data"
            us_per_sample = 1e6 / sample_frequency(path)
            requests = float(rps) * seconds
            groups = defaultdict(float)
            for symbol, n in samples_by_symbol(path).items():
                groups[group_of(symbol)] += n * us_per_sample / requests
            per_request[side] = groups
        names = [g for g, _ in GROUPS] + ["everything else"]
        busy = {s: sum(v for k, v in per_request[s].items() if k != "idle") for s in per_request}
        print(f"round {rnd}: busy CPU per request {busy['without']:.1f} us without, "
              f"{busy['with']:.1f} us with the agent ({busy['with'] - busy['without']:+.1f})")
        for name in names:
            a, b = per_request["without"].get(name, 0.0), per_request["with"].get(name, 0.0)
            print(f"    {name:34s} {a:8.2f} {b:8.2f} {b - a:+7.2f} us/request")


if __name__ == "__main__":
    main()
