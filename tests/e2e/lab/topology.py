"""The lab's topology: addresses, the backends and which proxy fronts each one.
Every other module of the lab and run.sh (through `lab.py topo`) take it from here."""
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
