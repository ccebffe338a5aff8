#!/usr/bin/env bash
# The agent behind --web.config.file, as an operator sets it up: a CA, a
# server certificate, client certificates (one from that CA, one from
# another), a bcrypt password, TLS with RequireAndVerifyClientCert and Basic
# authentication. Checked with curl and a real Prometheus scraping over TLS:
#   1. a broken file at start: one line naming the file and the key, exit 1;
#   2. no credentials -> 401 (WWW-Authenticate: Basic) on /metrics, / and
#      /healthz; the right ones -> 200 with metrics; a wrong password -> 401;
#      a client certificate from the wrong CA, none, or plain HTTP -> no
#      HTTP at all (the handshake fails), counted as tls_handshake;
#   3. Prometheus (basic_auth + tls_config) sees the target up == 1;
#   4. SIGHUP with a broken file: still served with the old password, the
#      failure logged and counted; SIGHUP with a new password: it switches.
# Everything stays on loopback. Exit 77 = skipped (ctest SKIP_RETURN_CODE).
#
#   sudo flock /tmp/sockeye-bpf.lock tests/e2e/web_config.sh build/sockeye
set -euo pipefail
agent=$(realpath "${1:?usage: web_config.sh path/to/sockeye}")

skip() {
  if [ "${SOCKEYE_REQUIRE_BPF:-0}" = 1 ]; then echo "FAIL (SOCKEYE_REQUIRE_BPF=1): $*"; exit 1; fi
  echo "SKIP: $*"; exit 77
}
[ "$(id -u)" -eq 0 ] || skip "not root: the agent needs CAP_BPF and CAP_PERFMON"
for tool in openssl curl prometheus python3; do
  command -v $tool >/dev/null || skip "$tool missing (bash packaging/install-deps.sh --test)"
done

work=$(mktemp -d)
agent_pid=""
prom_pid=""
cleanup() {
  [ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
bcrypt() {
  python3 -W ignore -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10)))' "$1"
}

# --- Certificates: ca -> server, ca -> client; other-ca -> stranger. ----------
quiet() { "$@" >/dev/null 2>&1 || { echo "FAIL: $*"; "$@"; exit 1; }; }
make_ca() { # name
  quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=$1" -keyout "$1.key" -out "$1.crt"
}
issue() { # name ca extensions
  quiet openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
    -keyout "$1.key" -out "$1.csr"
  printf '%s\n' "$3" >"$1.ext"
  quiet openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.crt"
}
make_ca ca
make_ca other-ca
issue server ca "subjectAltName=IP:127.0.0.1,DNS:localhost"
issue client ca "extendedKeyUsage=clientAuth"
issue stranger other-ca "extendedKeyUsage=clientAuth"

write_config() { # password
  cat >web.yml <<EOF
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS12
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
basic_auth_users:
  prom: $(bcrypt "$1")
EOF
}

port=$(free_port)
url="https://127.0.0.1:$port"
# exec: in the background, $! is then the agent itself (SIGHUP goes to it).
run_agent() {
  exec "$agent" --web.listen-address "127.0.0.1:$port" --web.config.file "$work/web.yml" \
    --include 127.0.0.5/32 "$@"
}
status=0
fail() { echo "FAIL: $*"; status=1; }

# --- 1. A broken file at start. ------------------------------------------------
printf 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS14\n' >web.yml
code=0
(run_agent) >start.log 2>&1 || code=$?
expected="sockeye: $work/web.yml: tls_server_config.min_version: \"TLS14\" is not one of TLS10, TLS11, TLS12, TLS13 (line 4)"
if [ "$code" = 0 ] || [ "$(cat start.log)" != "$expected" ]; then
  fail "broken file at start: exit $code, said:"; cat start.log
else
  echo "ok: a broken file at start is refused: $(cat start.log)"
fi

# --- 2. curl. -------------------------------------------------------------------
write_config scrape
run_agent >agent.log 2>&1 &
agent_pid=$!
client=(--cacert ca.crt --cert client.crt --key client.key)
for _ in $(seq 100); do
  curl -s "${client[@]}" -u prom:scrape "$url/healthz" >/dev/null 2>&1 && break
  kill -0 "$agent_pid" 2>/dev/null || { cat agent.log; echo "FAIL: agent exited"; exit 1; }
  sleep 0.1
done

http_code() { curl -s -o /dev/null -w '%{http_code}' "$@" || true; }
for path in /metrics / /healthz; do
  got=$(http_code "${client[@]}" "$url$path")
  [ "$got" = 401 ] || fail "no credentials on $path: HTTP $got, expected 401"
done
curl -s -D headers.txt -o /dev/null "${client[@]}" "$url/metrics" || true
grep -qi '^WWW-Authenticate: Basic' headers.txt || fail "401 without WWW-Authenticate: Basic"
grep -qi '^X-Content-Type-Options: nosniff' headers.txt || fail "401 without the configured header"
got=$(http_code "${client[@]}" -u prom:wrong "$url/metrics")
[ "$got" = 401 ] || fail "wrong password: HTTP $got, expected 401"
got=$(http_code "${client[@]}" -u someone:scrape "$url/metrics")
[ "$got" = 401 ] || fail "unknown user: HTTP $got, expected 401"
curl -sf "${client[@]}" -u prom:scrape "$url/metrics" >metrics.txt || fail "right credentials: curl failed"
grep -q '^sockeye_build_info{' metrics.txt || fail "right credentials: no sockeye_build_info in the page"
for path in / /healthz; do
  got=$(http_code "${client[@]}" -u prom:scrape "$url$path")
  [ "$got" = 200 ] || fail "right credentials on $path: HTTP $got"
done
[ $status = 0 ] && echo "ok: 401 without or with wrong credentials on /metrics, / and /healthz; 200 with them"

for who in stranger none plain; do
  case $who in
    stranger) args=(--cacert ca.crt --cert stranger.crt --key stranger.key "$url/metrics") ;;
    none) args=(--cacert ca.crt "$url/metrics") ;;
    plain) args=("http://127.0.0.1:$port/metrics") ;;
  esac
  code=0
  got=$(curl -s -o /dev/null -w '%{http_code}' -u prom:scrape "${args[@]}") || code=$?
  # 000: no HTTP response at all.
  if [ "$code" = 0 ] || [ "$got" != 000 ]; then fail "client $who: curl exit $code, HTTP $got"; fi
done
curl -sf "${client[@]}" -u prom:scrape "$url/metrics" >metrics.txt || fail "scrape after the refused handshakes"
refused=$(sed -n 's/^sockeye_http_connections_rejected_total{reason="tls_handshake"} //p' metrics.txt)
[ "$refused" = 3 ] || fail "tls_handshake rejections: '$refused', expected 3"
[ $status = 0 ] && echo "ok: wrong CA, no certificate and plain HTTP fail the handshake (counted: $refused)"

# --- 3. Prometheus over TLS with basic_auth. --------------------------------------
prom_port=$(free_port)
cat >prometheus.yml <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: sockeye
    scheme: https
    basic_auth:
      username: prom
      password: scrape
    tls_config:
      ca_file: $work/ca.crt
      cert_file: $work/client.crt
      key_file: $work/client.key
    static_configs:
      - targets: ["127.0.0.1:$port"]
EOF
prometheus --config.file=prometheus.yml --storage.tsdb.path="$work/prom" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >prometheus.log 2>&1 &
prom_pid=$!
up=""
for _ in $(seq 150); do
  up=$(curl -s "http://127.0.0.1:$prom_port/api/v1/query?query=up%7Bjob%3D%22sockeye%22%7D" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' \
      2>/dev/null) || true
  [ "$up" = 1 ] && break
  sleep 0.2
done
if [ "$up" = 1 ]; then
  echo "ok: Prometheus scrapes over TLS with a client certificate and basic_auth: up == 1"
else
  fail "Prometheus: up is '$up'"
  curl -s "http://127.0.0.1:$prom_port/api/v1/targets" | head -c 2000; echo
fi
kill "$prom_pid"; wait "$prom_pid" 2>/dev/null || true; prom_pid=""

# --- 4. SIGHUP. ---------------------------------------------------------------
printf 'basic_auth_users:\n  prom: plaintext\n' >web.yml
kill -HUP "$agent_pid"
for _ in $(seq 50); do grep -q 'keeping the previous web configuration' agent.log && break; sleep 0.1; done
grep -q "keeping the previous web configuration: $work/web.yml: basic_auth_users.prom: not a bcrypt" agent.log ||
  { fail "broken file on SIGHUP: not logged"; tail -5 agent.log; }
got=$(http_code "${client[@]}" -u prom:scrape "$url/metrics")
[ "$got" = 200 ] || fail "after a broken reload, the old password: HTTP $got, expected 200"
failures=$(curl -s "${client[@]}" -u prom:scrape "$url/metrics" |
  sed -n 's/^sockeye_web_config_reload_failures_total //p')
[ "$failures" = 1 ] || fail "sockeye_web_config_reload_failures_total is '$failures', expected 1"

write_config changed
kill -HUP "$agent_pid"
for _ in $(seq 50); do
  [ "$(http_code "${client[@]}" -u prom:changed "$url/healthz")" = 200 ] && break
  sleep 0.1
done
got=$(http_code "${client[@]}" -u prom:changed "$url/metrics")
[ "$got" = 200 ] || fail "after reload, the new password: HTTP $got"
got=$(http_code "${client[@]}" -u prom:scrape "$url/metrics")
[ "$got" = 401 ] || fail "after reload, the old password: HTTP $got, expected 401"
kill -0 "$agent_pid" || fail "agent died"
[ $status = 0 ] && echo "ok: SIGHUP with a broken file keeps the old password (logged, counted); with a new one switches"

[ $status = 0 ] || { echo "--- agent log"; tail -20 agent.log; }
exit $status
