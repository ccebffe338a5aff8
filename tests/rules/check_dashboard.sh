#!/usr/bin/env bash
# Checks sockeye's Prometheus and Grafana packaging:
#
#   1. every PromQL query of packaging/grafana/sockeye-dashboard.json parses:
#      panel targets (rows included) and template-variable queries
#      (label_values(SELECTOR, label) checks SELECTOR, query_result(EXPR)
#      checks EXPR).  Grafana variables ($var, ${var}, ${var:fmt}, [[var]],
#      $__rate_interval, $__interval, $__range, ...) are replaced with valid
#      placeholders, the queries are written as recording rules into a
#      temporary rules file and `promtool check rules` parses them.  A query
#      that uses a variable the dashboard does not define fails too, and so
#      does a panel selector of a sockeye metric that ignores the dashboard's
#      filters ($instance everywhere; $pool and $backend on backend series,
#      $listener on frontend series);
#   2. `promtool check rules` on packaging/prometheus/sockeye-rules.yml and
#      sockeye-alerts.yml;
#   3. every alert's runbook_url anchor has a section in docs/alerts.md and
#      the alert is tested in one of tests/rules/*.test.yml;
#   4. `promtool test rules` on tests/rules/*.test.yml.
#
# Usage: tests/rules/check_dashboard.sh   (from any directory)
# Needs: bash, python3, promtool (Debian: apt-get install prometheus).
# Exit status 0 only if every check passes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dashboard=$root/packaging/grafana/sockeye-dashboard.json
rules=$root/packaging/prometheus/sockeye-rules.yml
alerts=$root/packaging/prometheus/sockeye-alerts.yml
tests=("$here"/*.test.yml)

for tool in python3 promtool; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found in PATH" >&2; exit 2; }
done
for f in "$dashboard" "$rules" "$alerts" "${tests[@]}"; do
  [ -f "$f" ] || { echo "FAIL: missing $f" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

status=0
fail() { echo "FAIL: $*"; status=1; }
indent() { sed 's/^/        /'; }

# ---------------------------------------------------------------- dashboard
# Writes $work/dashboard-rules.yml (JSON is valid YAML) and $work/queries.tsv
# (record name, where the query comes from, the query as written), and prints
# problems found before promtool runs (undefined variables, missing filters).
if ! python3 - "$dashboard" "$work" <<'PY'
import json
import re
import sys

path, work = sys.argv[1], sys.argv[2]
try:
    with open(path) as f:
        dash = json.load(f)
except (OSError, ValueError) as e:
    print(f"FAIL: {path}: not valid JSON: {e}")
    sys.exit(1)

problems = []

# Values for Grafana's built-in variables; every dashboard variable becomes a
# plain word, valid inside a label matcher string.
BUILTIN = {
    "__rate_interval": "5m", "__interval": "1m", "__range": "1h",
    "__interval_ms": "60000", "__range_ms": "3600000", "__range_s": "3600",
    "__from": "1700000000000", "__to": "1700003600000",
    "__dashboard": "placeholder", "__name": "placeholder", "__org": "placeholder",
    "__user": "placeholder", "__all": "placeholder",
}
defined = {}
for v in dash.get("templating", {}).get("list", []):
    name = v.get("name")
    if not name:
        continue
    if v.get("type") == "interval":
        value = (v.get("query") or "1m").split(",")[0].strip() or "1m"
    elif v.get("type") in ("custom", "constant", "textbox") and v.get("query"):
        value = str(v["query"]).split(",")[0].strip()
        if " : " in value:  # custom "text : value"
            value = value.split(" : ", 1)[1]
    else:
        value = "placeholder"
    defined[name] = value

VAR = re.compile(r"\$\{(\w+)(?:[:.][^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")


def substitute(expr, where):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in BUILTIN:
            return BUILTIN[name]
        if name in defined:
            return defined[name]
        problems.append(f"{where}: uses ${name}, which the dashboard does not define")
        return "placeholder"
    return VAR.sub(repl, expr)


def split_args(s):
    """Splits s at commas outside (), {}, [] and quotes."""
    args, depth, quote, cur, i = [], 0, None, "", 0
    while i < len(s):
        c = s[i]
        if quote:
            cur += c
            if c == "\\" and i + 1 < len(s):
                cur += s[i + 1]
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
            cur += c
        elif c in "({[":
            depth += 1
            cur += c
        elif c in ")}]":
            depth -= 1
            cur += c
        elif c == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    args.append(cur.strip())
    return args


# Selectors of sockeye's metrics in panels must honour the dashboard filters.
SELECTOR = re.compile(r"\b((?:sockeye|process)_[A-Za-z0-9_]*)\s*(\{[^}]*\})?")
AGENT_WIDE = {"sockeye_backend_overflow_connections_total"}


def lint_filters(expr, where):
    for m in SELECTOR.finditer(expr):
        metric, matchers = m.group(1), m.group(2) or ""
        needed = ["instance"]
        if metric.startswith("sockeye_backend_") and metric not in AGENT_WIDE:
            needed += ["pool", "backend"]
        if metric.startswith("sockeye_frontend_"):
            needed += ["listener"]
        for label in needed:
            if not re.search(r"\b%s\s*=~\s*\"\$(%s|\{%s\})\"" % (label, label, label), matchers):
                problems.append(f'{where}: selector {metric}{matchers} does not filter by {label}=~"${label}"')


queries = []  # (where, expr as written, expr to parse)


def walk(panels):
    for p in panels:
        title = p.get("title") or "(untitled)"
        for t in p.get("targets", []) or []:
            expr = t.get("expr")
            if expr is None:
                continue
            where = f'panel "{title}" (id {p.get("id")}) query {t.get("refId", "?")}'
            if not str(expr).strip():
                problems.append(f"{where}: empty expr")
                continue
            lint_filters(expr, where)
            queries.append((where, expr, substitute(expr, where)))
        walk(p.get("panels", []) or [])


walk(dash.get("panels", []))
if not queries:
    problems.append("no panel queries found")

for v in dash.get("templating", {}).get("list", []):
    if v.get("type") != "query":
        continue
    q = v.get("query")
    if isinstance(q, dict):
        q = q.get("query", "")
    q = (q or "").strip()
    where = f'variable "{v.get("name")}"'
    m = re.fullmatch(r"(label_values|query_result|label_names|metrics)\s*\((.*)\)", q, re.S)
    if m and m.group(1) == "label_values":
        args = split_args(m.group(2))
        if len(args) not in (1, 2) or not re.fullmatch(r"[A-Za-z_]\w*", args[-1]):
            problems.append(f"{where}: malformed {q}")
            continue
        if len(args) == 1:  # label_values(label): nothing to parse
            continue
        expr = args[0]
    elif m and m.group(1) == "query_result":
        expr = m.group(2)
    elif m:  # label_names(), metrics(regex): no PromQL
        continue
    else:
        expr = q
    if not expr:
        problems.append(f"{where}: empty query")
        continue
    queries.append((where, q, substitute(expr, where)))

rules = {"groups": [{"name": "dashboard", "rules": [
    {"record": f"dashboard:query_{i:03d}", "expr": e} for i, (_, _, e) in enumerate(queries)]}]}
with open(f"{work}/dashboard-rules.yml", "w") as f:
    json.dump(rules, f, indent=1)
with open(f"{work}/queries.tsv", "w") as f:
    for i, (where, raw, expr) in enumerate(queries):
        f.write(f"dashboard:query_{i:03d}\t{where}\t{' '.join(raw.split())}\t{' '.join(expr.split())}\n")

for p in problems:
    print(f"FAIL: {p}")
print(f"dashboard: {len(queries)} queries extracted "
      f"({sum(1 for q in queries if q[0].startswith('panel'))} panel targets, "
      f"{sum(1 for q in queries if q[0].startswith('variable'))} variable queries)")
sys.exit(1 if problems else 0)
PY
then
  status=1
fi

if [ -f "$work/dashboard-rules.yml" ]; then
  if out=$(promtool check rules "$work/dashboard-rules.yml" 2>&1); then
    echo "dashboard: every query parses (promtool check rules)"
  else
    status=1
    # Name the panels behind the failing recording rules.
    named=0
    while IFS=$'\t' read -r record where raw expr; do
      if grep -q "\"$record\"" <<<"$out"; then
        named=1
        echo "FAIL: $where does not parse:"
        echo "        $raw"
        [ "$raw" = "$expr" ] || echo "        checked as: $expr"
        grep "\"$record\"" <<<"$out" | sed 's/^/        promtool: /'
      fi
    done <"$work/queries.tsv"
    if [ $named -eq 0 ]; then
      echo "FAIL: promtool check rules rejected the dashboard queries:"
      indent <<<"$out"
    fi
  fi
fi

# ------------------------------------------------------------- rule files
for f in "$rules" "$alerts"; do
  if out=$(promtool check rules "$f" 2>&1); then
    echo "${f#"$root"/}: $(grep -o 'SUCCESS.*' <<<"$out")"
  else
    fail "promtool check rules ${f#"$root"/}:"
    indent <<<"$out"
  fi
done

# Every alert links to an existing section of docs/alerts.md and has tests.
if ! python3 - "$alerts" "$root/docs/alerts.md" "${tests[@]}" <<'PY'
import re
import sys

alerts, doc = (open(p).read() for p in sys.argv[1:3])
tests = "\n".join(open(p).read() for p in sys.argv[3:])
names = re.findall(r"^\s*- alert:\s*(\S+)", alerts, re.M)
urls = re.findall(r"runbook_url:\s*\"?([^\"\s]+)", alerts)
anchors = {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-")
           for h in re.findall(r"^#+\s+(.*)$", doc, re.M)}
bad = 0
if len(urls) != len(names):
    print(f"FAIL: {len(names)} alerts but {len(urls)} runbook_url annotations")
    bad = 1
for name, url in zip(names, urls):
    anchor = url.rsplit("#", 1)[-1]
    if anchor != name.lower():
        print(f"FAIL: {name}: runbook_url anchor #{anchor} is not #{name.lower()}")
        bad = 1
    if anchor not in anchors:
        print(f"FAIL: {name}: docs/alerts.md has no section for #{anchor}")
        bad = 1
    if not re.search(r"alertname:\s*%s\s*$" % re.escape(name), tests, re.M):
        print(f"FAIL: {name}: no test in tests/rules/*.test.yml")
        bad = 1
if not bad:
    print(f"alerts: {len(names)} alerts, each with a runbook section in docs/alerts.md and tests")
sys.exit(bad)
PY
then
  status=1
fi

if out=$(promtool test rules "${tests[@]}" 2>&1); then
  echo "${tests[*]#"$root"/}: promtool test rules: SUCCESS"
else
  fail "promtool test rules ${tests[*]#"$root"/}:"
  indent <<<"$out"
fi

if [ $status -eq 0 ]; then
  echo "OK: dashboard queries, rule files and rule tests all pass"
else
  echo "FAILED: see above"
fi
exit $status
