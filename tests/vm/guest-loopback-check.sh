#!/bin/sh
# Runs INSIDE the test VM (busybox sh): checks that TCP over loopback works for
# 127.0.0.1, another 127/8 address and ::1. Prints one line per check:
#   loopback=<name> result=ok|FAIL (<detail>)
# and exits non-zero if any check failed. (busybox 1.35 wget -T segfaults in
# Debian's static build, hence `timeout wget`.)
# usage (host): run-in-vm.sh --kernel K --file tests/vm/guest-loopback-check.sh:/bin/loopback-check -- loopback-check
fails=0
check() {  # NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        echo "loopback=$1 result=ok"
    else
        echo "loopback=$1 result=FAIL (expected '$2', got '$3')"
        fails=$((fails + 1))
    fi
}

mkdir -p /tmp/www
echo hello-from-httpd > /tmp/www/index.html

# httpd bound to explicit addresses, wget as the client
httpd -p 127.0.0.1:8080 -h /tmp/www || echo "httpd 127.0.0.1 failed to start"
httpd -p '[::1]:8081' -h /tmp/www || echo "httpd ::1 failed to start"
sleep 0.3
check httpd_wget_127.0.0.1 hello-from-httpd "$(timeout 10 wget -q -O - http://127.0.0.1:8080/ 2>&1)"
check httpd_wget_::1 hello-from-httpd "$(timeout 10 wget -q -O - 'http://[::1]:8081/' 2>&1)"

# busybox nc: listener on the wildcard (dual-stack ::), client to 127.0.0.1, 127.0.0.2, ::1
n=0
for addr in 127.0.0.1 127.0.0.2 ::1; do
    n=$((n + 1))
    port=$((9000 + n))
    rm -f /tmp/nc.out
    nc -l -p "$port" > /tmp/nc.out &
    pid=$!
    sleep 0.3
    echo "hello-nc-$n" | nc -w 5 "$addr" "$port"
    # the listener exits when the client closes; don't wait forever
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
    kill "$pid" 2>/dev/null
    check "nc_$addr" "hello-nc-$n" "$(cat /tmp/nc.out 2>/dev/null)"
done

echo "--- listening sockets"
netstat -ltn
killall httpd 2>/dev/null
echo "loopback_failures=$fails"
[ "$fails" -eq 0 ]
