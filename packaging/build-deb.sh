#!/usr/bin/env bash
# Builds sockeye_<version>_<arch>.deb from this source tree with dpkg-deb.
#
#   packaging/build-deb.sh [-o OUTDIR] [--build-dir DIR | --binary FILE]
#
#   -o, --output DIR   where to write the .deb (default: build-deb/dist/ in
#                      the tree)
#   --build-dir DIR    CMake build directory to build sockeye in (default:
#                      build-deb/ in the tree), configured with Debian's
#                      hardening flags (dpkg-buildflags) and without tests
#                      or benchmarks; an existing one is reused as it is
#   --binary FILE      package this already built binary instead of building
#
# Needs cmake, ninja, dpkg-dev and help2man (packaging/install-deps.sh, then
# packaging/install-packaging-deps.sh). Runs as any user; the package's files
# are owned by root (dpkg-deb --root-owner-group). Prints the .deb's path on
# its last line.
set -euo pipefail
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/.." && pwd)
out="$src/build-deb/dist"
build_dir="$src/build-deb"
binary=""

die() { echo "build-deb.sh: $*" >&2; exit 1; }
usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    -o | --output) out=${2:?"$1 needs a directory"}; shift 2 ;;
    --build-dir) build_dir=${2:?"$1 needs a directory"}; shift 2 ;;
    --binary) binary=${2:?"$1 needs a file"}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

for tool in dpkg-deb dpkg-shlibdeps dpkg-parsechangelog dpkg-architecture help2man gzip strip md5sum; do
  command -v "$tool" >/dev/null ||
    die "$tool not found; run packaging/install-packaging-deps.sh (as root)"
done

# --- The binary ---------------------------------------------------------------
if [ -z "$binary" ]; then
  command -v cmake >/dev/null || die "cmake not found; run packaging/install-deps.sh (as root)"
  if [ ! -f "$build_dir/CMakeCache.txt" ]; then
    echo "build-deb.sh: configuring $build_dir with dpkg-buildflags" >&2
    # What debhelper's cmake build system does: Debian's flags (hardening
    # included), CMAKE_BUILD_TYPE=None so that CMake adds none of its own.
    # CMake reads no CPPFLAGS, so they go into the compiler flags.
    eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
    export CFLAGS="$CFLAGS $CPPFLAGS" CXXFLAGS="$CXXFLAGS $CPPFLAGS" LDFLAGS
    generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    cmake -S "$src" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=None \
      -DSOCKEYE_BUILD_TESTS=OFF -DSOCKEYE_BUILD_BENCH=OFF >&2
  fi
  cmake --build "$build_dir" --target sockeye >&2
  binary="$build_dir/sockeye"
fi
[ -x "$binary" ] || die "$binary is not an executable"

# --- Version --------------------------------------------------------------------
changelog="$here/deb/changelog"
version=$(dpkg-parsechangelog -l "$changelog" -S Version)
maintainer=$(dpkg-parsechangelog -l "$changelog" -S Maintainer)
timestamp=$(dpkg-parsechangelog -l "$changelog" -S Timestamp)
upstream=$("$binary" --version | awk 'NR == 1 { print $2 }')
[ "${version%-*}" = "$upstream" ] ||
  die "the binary is version $upstream but packaging/deb/changelog says $version: add a changelog entry"
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
# Reproducible: file times, the man page's date and the archive's times all
# come from the changelog entry.
export SOURCE_DATE_EPOCH="$timestamp"

# --- Staging ----------------------------------------------------------------------
# dpkg-shlibdeps wants the tree at debian/<package>/ below its working directory.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/debian/sockeye"
doc="$root/usr/share/doc/sockeye"

install -d "$root/DEBIAN"
install -D -m 0755 "$binary" "$root/usr/sbin/sockeye"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/sbin/sockeye"
install -D -m 0644 "$here/sockeye.toml" "$root/etc/sockeye/sockeye.toml"
install -D -m 0644 "$here/systemd/sockeye.service" "$root/lib/systemd/system/sockeye.service"
install -D -m 0644 "$here/deb/copyright" "$doc/copyright"
install -D -m 0644 "$here/systemd/SECURITY.md" "$doc/SECURITY.md"
install -D -m 0644 "$here/systemd/override.conf.example" "$doc/examples/override.conf.example"
gzip -9n <"$changelog" >"$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"
if [ -f "$here/deb/lintian-overrides" ]; then
  install -D -m 0644 "$here/deb/lintian-overrides" "$root/usr/share/lintian/overrides/sockeye"
fi

# sockeye.8 from --help and --version. The help's closing examples are left
# out (the include file has an EXAMPLES section), help2man's option pattern
# misses dotted names (--web.listen-address), and the long bucket lists get
# break points after their commas.
cat >"$work/sockeye-help" <<EOF
#!/bin/sh
if [ "\$1" = "--help" ]; then
  "$binary" --help | sed '/^Example:\$/,\$d'
else
  exec "$binary" "\$@"
fi
EOF
chmod 0755 "$work/sockeye-help"
install -d "$root/usr/share/man/man8"
help2man --section=8 --no-info --include="$here/deb/sockeye.8.h2m" \
  --manual="System Administration" --source="sockeye $upstream" "$work/sockeye-help" |
  sed -E -e 's/\\fB\\-\\-([a-z]+)\\fR\.(([a-z]|\\-)+)/\\fB\\-\\-\1.\2\\fR/g' \
    -e '/^\\fB\\-\\-buckets/s/,/,\\:/g' |
  gzip -9n >"$root/usr/share/man/man8/sockeye.8.gz"
chmod 0644 "$root/usr/share/man/man8/sockeye.8.gz"

# --- Control files ----------------------------------------------------------------
for script in postinst prerm postrm; do
  install -m 0755 "$here/deb/$script" "$root/DEBIAN/$script"
done
echo /etc/sockeye/sockeye.toml >"$root/DEBIAN/conffiles"

shlibs=$(cd "$work" && touch debian/control &&
  dpkg-shlibdeps -O "$root/usr/sbin/sockeye" | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no shared library dependencies"
installed_size=$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
  -e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@SHLIBS_DEPENDS@|$shlibs|" \
  "$here/deb/control.in" >"$root/DEBIAN/control"

(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
deb="$(cd "$out" && pwd)/sockeye_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
