"""Config files for the lab: the backend nginx, the proxy nginx, HAProxy, Prometheus,
and the static files and upload body they serve."""
import os

from topology import AGENT, BACKENDS, HAP_STATS, HAPROXY, NGINX, SIZES


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
