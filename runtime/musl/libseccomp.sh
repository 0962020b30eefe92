#!/usr/bin/env bash
# Build a static libseccomp for musl into $1 (lib/libseccomp.a), from the
# Debian source of the libseccomp-dev version installed here, with Debian's
# patches applied. husk's release binaries link musl rather than glibc, and
# Debian ships libseccomp.a only for glibc (it calls __fprintf_chk and other
# glibc-only symbols).
#
# Needs: musl-tools (musl-gcc), gperf, dpkg-dev (dpkg-source), linux-libc-dev,
# make, and an apt mirror that serves sources (the system's own, read as
# deb-src through a private apt state: the system's apt config is untouched).
#
#     runtime/musl/libseccomp.sh target/musl-libseccomp
set -euo pipefail

out=$(mkdir -p "$1" && cd "$1" && pwd)
version=$(dpkg-query -W -f '${Version}' libseccomp-dev 2>/dev/null || true)
if [ -z "$version" ]; then
    echo "libseccomp.sh: libseccomp-dev is not installed (apt-get install libseccomp-dev)" >&2
    exit 1
fi
if [ -f "$out/lib/libseccomp.a" ] && [ "$(cat "$out/version" 2>/dev/null)" = "$version" ]; then
    exit 0
fi
for tool in musl-gcc gperf dpkg-source make; do
    if ! command -v "$tool" >/dev/null; then
        echo "libseccomp.sh: $tool not found (apt-get install musl-tools gperf dpkg-dev make)" >&2
        exit 1
    fi
done

work=$(mktemp -d /tmp/husk-libseccomp.XXXXXX)
trap 'rm -rf "$work"' EXIT

# deb-src twins of the system's deb sources, in both apt formats.
mkdir -p "$work/apt/lists/partial" "$work/apt/parts"
if [ -f /etc/apt/sources.list ]; then
    sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list >"$work/apt/sources.list"
else
    : >"$work/apt/sources.list"
fi
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && sed 's/^Types:.*/Types: deb-src/' "$f" >"$work/apt/parts/$(basename "$f")"
done
for f in /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f" >"$work/apt/parts/$(basename "$f")"
done
apt_opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=$work/apt/parts"
    -o "Dir::State::Lists=$work/apt/lists" -o "APT::Sandbox::User=root" -q)
apt-get "${apt_opts[@]}" update >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; exit 1; }
(cd "$work" && apt-get "${apt_opts[@]}" source --download-only "libseccomp=$version" >>apt.log 2>&1) \
    || { cat "$work/apt.log" >&2; exit 1; }
# apt has checked the files against the signed index; dpkg-source's own
# signature check would want the uploader's key (debian-keyring) as well.
(cd "$work" && dpkg-source -x ./*.dsc src >dpkg-source.log 2>&1) || { cat "$work/dpkg-source.log" >&2; exit 1; }

# musl-gcc sees only musl's headers; libseccomp also needs the kernel's.
mkdir -p "$work/kinc"
ln -s /usr/include/linux "$work/kinc/linux"
ln -s "/usr/include/$(uname -m)-linux-gnu/asm" "$work/kinc/asm"
ln -s /usr/include/asm-generic "$work/kinc/asm-generic"

cd "$work/src"
CC=musl-gcc CFLAGS="-Os -ffunction-sections -fdata-sections -I$work/kinc" \
    ./configure --enable-static --disable-shared >"$work/configure.log" 2>&1 \
    || { cat "$work/configure.log" >&2; exit 1; }
make -C src -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -40 "$work/make.log" >&2; exit 1; }

mkdir -p "$out/lib"
cp src/.libs/libseccomp.a "$out/lib/libseccomp.a.tmp"
mv "$out/lib/libseccomp.a.tmp" "$out/lib/libseccomp.a"
echo "$version" >"$out/version"
echo "libseccomp.sh: built libseccomp $version for musl in $out"
