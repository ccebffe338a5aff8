#!/usr/bin/env bash
# A newcomer's first run, measured: undoes what the project installs and
# caches on this machine, then runs the README's two commands from a fresh
# clone of HEAD and records whether they passed and how long they took.
#
#   scripts/fresh-check.sh --yes [--warm] [--out FILE]
#
#   --yes    required: it purges packages (apt-get purge) and deletes
#            /var/cache/sockeye-vm; run it only on a disposable test machine
#   --warm   afterwards, run the test command again in the same clone
#            (packages, kernels and build in place) and record that time too
#   --out    the record (default tests/results/fresh-check-DATE.txt)
#
# Cold means: none of the packages packaging/install-deps.sh installs, except
# the toolchain a machine of this kind ships with (KEEP below: compilers,
# cmake, GoogleTest, python3, curl, iproute2, systemd, openssl, which its
# Java and CA certificates depend on, ...); no apt archive
# cache; no guest kernels (/var/cache/sockeye-vm); no build directory.
# Each command starts from that state: the test command first, then the
# packages are purged again and the run command starts cold too.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
yes=0 warm=0 out=$repo/tests/results/fresh-check-$(date +%F).txt
while [ $# -gt 0 ]; do
  case "$1" in
    --yes) yes=1 ;;
    --warm) warm=1 ;;
    --out) out=$(realpath -m "$2"); shift ;;
    *) echo "fresh-check.sh: unknown argument $1 (--yes, --warm, --out FILE)" >&2; exit 2 ;;
  esac
  shift
done
[ "$yes" = 1 ] || { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; echo "fresh-check.sh: pass --yes to go ahead" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "fresh-check.sh: must run as root" >&2; exit 2; }

KEEP=" adduser binutils build-essential clang cmake curl dpkg-dev gzip iproute2 libcap2-bin libgmock-dev "
KEEP+="libgtest-dev linux-libc-dev llvm ninja-build openssl pkg-config python3 strace systemd util-linux zlib1g-dev "
purge_list=()
while read -r pkg; do
  [[ "$KEEP" == *" $pkg "* ]] || purge_list+=("$pkg")
done < <(bash "$repo/packaging/install-deps.sh" --list --test --packaging)

make_cold() {
  local installed=()
  for pkg in "${purge_list[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" && installed+=("$pkg")
  done
  echo "fresh-check: purging ${installed[*]:-nothing}"
  export DEBIAN_FRONTEND=noninteractive
  [ ${#installed[@]} -eq 0 ] || apt-get purge -y -qq "${installed[@]}" >/dev/null
  apt-get autoremove --purge -y -qq >/dev/null
  apt-get clean
  rm -rf "${SOCKEYE_VM_CACHE:-/var/cache/sockeye-vm}"
}

work=$(mktemp -d /tmp/sockeye-fresh.XXXXXX)
commit=$(git -C "$repo" rev-parse --short=12 HEAD)
git -C "$repo" diff --quiet HEAD || echo "fresh-check: uncommitted changes are not in the clone (it checks out $commit)" >&2

minutes() { awk -v s="$1" 'BEGIN { printf "%d min %02d s", s / 60, s % 60 }'; }
{
  echo "fresh-check $(date -u +%FT%TZ): commit $commit; $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 }') GiB," \
       "Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "purged before each command: ${purge_list[*]}; apt's archive cache; /var/cache/sockeye-vm"
} >"$work/record"

# 1. The test command, cold.
make_cold
git clone -q "$repo" "$work/test" && git -C "$work/test" checkout -q "$commit"
start=$(date +%s)
rc=0
(cd "$work/test" && bash scripts/test.sh) >"$work/test.log" 2>&1 || rc=$?
test_seconds=$(( $(date +%s) - start ))
echo "test command (bash scripts/test.sh), cold: exit $rc after $(minutes $test_seconds)" | tee -a "$work/record"
# Tests of a second or more (the rest, unit tests mostly, take ~0.01 s each).
grep -E '^ *[0-9]+/[0-9]+ Test +#' "$work/test.log" | sed -E 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: //' |
  awk '$(NF-1) + 0 >= 1' >>"$work/record" || true
grep -E 'tests passed|Total Test time' "$work/test.log" >>"$work/record" || true
grep -E '^install-deps.sh:|^install-|^fetch-kernels|^test.sh:' "$work/test.log" >>"$work/record" || true
echo "kernel matrix guests (3 at a time, beside the host tiers; from ctest's log):" >>"$work/record"
grep -E '^guest ' "$work/test/build/Testing/Temporary/LastTest.log" >>"$work/record" 2>/dev/null || true

# 2. Optionally the same command again, warm.
if [ "$warm" = 1 ]; then
  start=$(date +%s)
  wrc=0
  (cd "$work/test" && bash scripts/test.sh) >"$work/warm.log" 2>&1 || wrc=$?
  echo "test command again, warm: exit $wrc after $(minutes $(( $(date +%s) - start )))" | tee -a "$work/record"
  grep -E 'tests passed|Total Test time|^test.sh:' "$work/warm.log" >>"$work/record" || true
  [ "$wrc" -eq 0 ] || rc=$wrc
fi

# 3. The run command, cold: it must build, start, say where the metrics are
# and serve them.
make_cold
git clone -q "$repo" "$work/run" && git -C "$work/run" checkout -q "$commit"
start=$(date +%s)
(cd "$work/run" && exec bash scripts/run.sh) >"$work/run.log" 2>&1 &
runner=$!
served=0
for _ in $(seq 1200); do
  if grep -q "sockeye is serving" "$work/run.log" && curl -fs -m 2 localhost:19480/metrics | grep -q '^sockeye_build_info'; then
    served=1
    break
  fi
  kill -0 $runner 2>/dev/null || break
  sleep 0.5
done
run_seconds=$(( $(date +%s) - start ))
kill -TERM $runner 2>/dev/null || true
wait $runner 2>/dev/null || true
if [ "$served" = 1 ]; then
  echo "run command (bash scripts/run.sh), cold: serving /metrics after $(minutes $run_seconds); it printed:" | tee -a "$work/record"
  sed -n '/sockeye is serving/,/^$/p' "$work/run.log" | sed 's/^/    /' >>"$work/record"
else
  rc=1
  echo "run command (bash scripts/run.sh), cold: FAILED (nothing served after $(minutes $run_seconds))" | tee -a "$work/record"
  tail -n 20 "$work/run.log" | sed 's/^/    /' >>"$work/record"
fi

mkdir -p "$(dirname "$out")"
cp "$work/record" "$out"
echo "fresh-check: record in $out; logs in $work"
exit "$rc"
