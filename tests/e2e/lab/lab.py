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
# The lab's modules, one job each: topology (addresses and backends), render (config
# files), readings (metrics, logs, ss), wire (tcpdump reference), checks (assertions
# and tables), compare (the three comparisons).
import sys

sys.dont_write_bytecode = True  # run as root from the source tree: leave no __pycache__ behind

from compare import check_main, check_prom, check_restart  # noqa: E402
from readings import mark, ss_count, wait_stable  # noqa: E402
from render import render  # noqa: E402
from topology import BACKENDS, topo  # noqa: E402


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
