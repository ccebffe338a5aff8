#!/bin/sh
# Runs INSIDE a test guest (busybox sh): the checks of one boot, in order.
#
#   run-checks FILE
#
# FILE holds one check a line, "LABEL<TAB>COMMAND". Each COMMAND runs in its
# own shell; for each, a line "SOCKEYE_CHECK PASS|FAIL SECONDS LABEL" goes to
# the console (after the last 40 lines of a failing check's output), which
# run-matrix.sh reads back. The exit status is the number of failures.
fails=0
tab=$(printf '\t')
while IFS="$tab" read -r label command; do
    [ -n "$label" ] || continue
    start=$(cut -d' ' -f1 /proc/uptime)
    if sh -c "$command" </dev/null >/tmp/check.out 2>&1; then
        result=PASS
    else
        result=FAIL
        fails=$((fails + 1))
        echo "--- output of: $label"
        tail -n 40 /tmp/check.out
    fi
    end=$(cut -d' ' -f1 /proc/uptime)
    echo "SOCKEYE_CHECK $result $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }') $label"
done < "$1"
exit "$fails"
