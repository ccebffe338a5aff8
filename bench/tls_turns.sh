#!/usr/bin/env bash
# What sockeye's request count means for TLS backends. sockeye counts
# request/response turns on the wire and cannot read the payload, so a TLS
# connection's handshake (ClientHello -> ServerHello...) and its closing alert
# (close_notify, sent before the FIN, never answered) are turns too. This
# measures, side by side with nginx's own log of upstream attempts, how many
# turns each TLS connection adds, with and without an upstream keep-alive
# pool, for TLS 1.3 and 1.2, next to a plaintext control on the same backend.
#
#   sudo bench/tls_turns.sh build/sockeye [SECONDS=2]
#
# nginx (one worker) proxies 127.0.77.50:8050 to a backend server block on
# 127.0.77.51 (:8443 TLS with a throwaway self-signed certificate, :8080
# plain) serving 1,000 B; wrk drives each phase for SECONDS with 2
# connections. Then time to first byte: curl makes 5 one-request TLS 1.3
# connections and one with 3 requests to a Python TLS server on
# 127.0.77.52:8443 that answers every request 50 ms after it arrives; every
# request's true time to first byte is >= 50 ms. All traffic is on loopback.
set -euo pipefail
agent=$(realpath "${1:?usage: tls_turns.sh path/to/sockeye [seconds]}")
seconds=${2:-2}
[ "$(id -u)" -eq 0 ] || { echo "tls_turns.sh: needs root" >&2; exit 1; }
for tool in nginx wrk curl openssl python3; do
  command -v $tool >/dev/null ||
    { echo "tls_turns.sh: $tool missing (apt-get install nginx wrk curl openssl)" >&2; exit 1; }
done

work=$(mktemp -d)
agent_pid=""
slow_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  [ -n "$slow_pid" ] && kill "$slow_pid" 2>/dev/null
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 1 -subj /CN=127.0.77.51 2>/dev/null
head -c 1000 /dev/zero | tr '\0' x >"$work/body.txt"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  log_format upstream '\$upstream_addr \$upstream_status \$upstream_bytes_sent \$upstream_bytes_received';
  server {
    listen 127.0.77.51:8443 ssl;
    listen 127.0.77.51:8080;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { root $work; try_files /body.txt =404; }
  }
  upstream tls_pool { server 127.0.77.51:8443; keepalive 16; }
  upstream tls_each { server 127.0.77.51:8443; }
  upstream plain_pool { server 127.0.77.51:8080; keepalive 16; }
  server {
    listen 127.0.77.50:8050;
    access_log $work/upstream.log upstream;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    location /tls13-pool { proxy_pass https://tls_pool/; proxy_ssl_protocols TLSv1.3; }
    location /tls13-each { proxy_pass https://tls_each/; proxy_ssl_protocols TLSv1.3; }
    location /tls12-each { proxy_pass https://tls_each/; proxy_ssl_protocols TLSv1.2; }
    location /plain-pool { proxy_pass http://plain_pool/; }
  }
}
EOF
nginx -c "$work/nginx.conf"
port=19556
"$agent" --include 127.0.77.51/32 --include 127.0.77.52/32 --web.listen-address 127.0.0.1:$port >"$work/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 50); do curl -fs "127.0.0.1:$port/metrics" >/dev/null && break; sleep 0.1; done

# metric NAME BACKEND: the value, 0 when the series does not exist yet.
metric() {
  curl -fs "127.0.0.1:$port/metrics" |
    awk -v n="$1" -v b="backend=\"$2\"" '$1 ~ "^"n"[{]" && index($1, b) { v += $2 } END { print v + 0 }'
}
snapshot() {
  for name in sockeye_backend_requests_total sockeye_backend_connections_established_total \
    sockeye_backend_connections_closed_total sockeye_backend_time_to_first_byte_seconds_count; do
    printf '%s ' "$(metric $name "$1")"
  done
}

printf '%-11s %9s %9s %8s %8s %9s %12s\n' phase attempts sockeye extra conns closed "extra/conn"
for phase in plain-pool tls13-pool tls13-each tls12-each; do
  case $phase in plain-*) backend=127.0.77.51:8080 ;; *) backend=127.0.77.51:8443 ;; esac
  : >"$work/upstream.log"
  kill -USR1 "$(cat "$work/nginx.pid")"
  read -r req0 conn0 closed0 ttfb0 <<<"$(snapshot $backend)"
  wrk -t1 -c2 -d"${seconds}s" "http://127.0.77.50:8050/$phase" >/dev/null
  # Pooled connections stay open; closing them is part of what is counted,
  # so the pool is emptied (nginx closes idle upstream connections on
  # reload) before the numbers are taken.
  nginx -c "$work/nginx.conf" -s reload 2>/dev/null
  sleep 3
  read -r req1 conn1 closed1 ttfb1 <<<"$(snapshot $backend)"
  attempts=$(wc -l <"$work/upstream.log")
  requests=$((req1 - req0))
  conns=$((conn1 - conn0))
  closed=$((closed1 - closed0))
  extra=$((requests - attempts))
  per=$(awk -v e=$extra -v c=$conns 'BEGIN { if (c) printf "%.2f", e / c; else print "-" }')
  printf '%-11s %9d %9d %8d %8d %9d %12s   (TTFB samples %d)\n' \
    "$phase" "$attempts" "$requests" "$extra" "$conns" "$closed" "$per" $((ttfb1 - ttfb0))
done

cat >"$work/slow_tls.py" <<'EOF'
import socket, ssl, sys, threading, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1] + "/cert.pem", sys.argv[1] + "/key.pem")
srv = socket.create_server(("127.0.77.52", 8443))
def serve(conn):
    with conn:
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
            while tls.recv(65536):
                time.sleep(0.05)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        except OSError:
            pass
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
EOF
python3 "$work/slow_tls.py" "$work" &
slow_pid=$!
sleep 0.5
slow=127.0.77.52:8443
read -r req0 conn0 closed0 ttfb0 <<<"$(snapshot $slow)"
for _ in 1 2 3 4 5; do curl -fsk --tlsv1.3 "https://$slow/" -o /dev/null; done
curl -fsk --tlsv1.3 "https://$slow/a" "https://$slow/b" "https://$slow/c" -o /dev/null -o /dev/null -o /dev/null
sleep 2
read -r req1 conn1 closed1 ttfb1 <<<"$(snapshot $slow)"
under=$(curl -fs "127.0.0.1:$port/metrics" |
  awk -v b="backend=\"$slow\"" '/^sockeye_backend_time_to_first_byte_seconds_bucket/ && index($1, b) && index($1, "le=\"0.05\"") { print $2 }')
echo
echo "delayed TLS 1.3 backend (50 ms): 8 requests over 6 connections (curl); sockeye counted" \
  "$((req1 - req0)) requests over $((conn1 - conn0)) connections, $((ttfb1 - ttfb0)) time-to-first-byte" \
  "samples, $under of them under 50 ms"
