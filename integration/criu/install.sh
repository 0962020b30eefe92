#!/usr/bin/env bash
# Installs a CRIU that works on this machine's kernel as /usr/local/sbin/criu,
# for the checkpoint/restore tests (husk checkpoint/restore, runc's).
#
#     bash integration/criu/install.sh        (as root)
#
# Debian 12's criu (3.17) fails `criu check` on current kernels (vDSO), so
# CRIU is built from the upstream source of Debian trixie's `criu` source
# package, taken from the same Debian mirror the machine's apt uses, and
# linked against bookworm's libraries (build dependencies installed from
# bookworm; nothing is upgraded to trixie). The trixie source index is read
# through a private apt configuration (sources list, lists and cache under a
# temporary directory, passed with -o options): the machine's apt sources
# and lists are not changed. The orig tarball is checked against the SHA-256
# of the signed Sources index. Debian's packaging (the .dsc and
# .debian.tar.xz) is not used: the mirror may not serve it, and `make criu`
# of the upstream tree builds the binary alone (no docs, plugins, crit or
# libcriu).
#
# The binary is cached in $HUSK_CRIU_CACHE (default /var/cache/husk-test) as
# criu-<debian version>-<hash of this script>/criu; a cached binary that
# passes `criu check` is installed without building. If the mirror cannot be
# reached, the newest cached build of this script that passes is used.
#
# Environment: HUSK_CRIU_SUITE (default trixie), HUSK_CRIU_MIRROR (default:
# the machine's Debian mirror), HUSK_CRIU_DEST (default
# /usr/local/sbin/criu), HUSK_CRIU_CACHE (default /var/cache/husk-test).
set -euo pipefail

SUITE=${HUSK_CRIU_SUITE:-trixie}
DEST=${HUSK_CRIU_DEST:-/usr/local/sbin/criu}
CACHE_ROOT=${HUSK_CRIU_CACHE:-/var/cache/husk-test}
SELF_HASH=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# Build dependencies (bookworm), from debian/control's Build-Depends less the
# documentation and Python parts.
BUILD_PKGS=(gcc make libc6-dev pkg-config xz-utils libprotobuf-c-dev
    protobuf-c-compiler libprotobuf-dev protobuf-compiler libnl-3-dev
    libnet1-dev libcap-dev libbsd-dev libgnutls28-dev libnftables-dev uuid-dev)
# What the binary needs at run time: its shared libraries, and iptables for
# CRIU's default network lock (iptables-restore inside the dumped netns).
RUNTIME_PKGS=(libprotobuf-c1 libnl-3-200 libnet1 libbsd0 libgnutls30
    libnftables1 libuuid1 iptables)

log() { printf 'criu/install.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages and $DEST)"
export DEBIAN_FRONTEND=noninteractive

missing_pkgs() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed \
            || printf '%s\n' "$p"
    done
}

apt_install() {
    local missing
    missing=$(missing_pkgs "$@")
    [ -n "$missing" ] || return 0
    log "apt-get install $(echo $missing)"
    # shellcheck disable=SC2086
    if ! apt-get install -y --no-install-recommends $missing; then
        apt-get update
        # shellcheck disable=SC2086
        apt-get install -y --no-install-recommends $missing
    fi
}

# usable BINARY: its libraries resolve and `criu check` passes.
usable() {
    local bin=$1
    [ -x "$bin" ] || return 1
    if ldd "$bin" 2>/dev/null | grep -q 'not found'; then
        apt_install "${RUNTIME_PKGS[@]}" || return 1
    fi
    "$bin" check >/dev/null 2>&1
}

install_from() {
    local dir=$1
    apt_install "${RUNTIME_PKGS[@]}"
    mkdir -p "$(dirname "$DEST")"
    install -m 0755 "$dir/criu" "$DEST.tmp.$$"
    mv -f "$DEST.tmp.$$" "$DEST"
    log "installed $DEST from $dir"
    "$DEST" --version
    # `criu check` prints "Looks good." on success.
    if ! "$DEST" check; then
        die "'$DEST check' failed on kernel $(uname -r)"
    fi
}

WORK=$(mktemp -d /tmp/husk-criu.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# --- the trixie source index, through a private apt configuration --------
mirror=${HUSK_CRIU_MIRROR:-}
if [ -z "$mirror" ]; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    mirror=$(apt-get indextargets --format '$(ORIGIN)|$(CODENAME)|$(REPO_URI)' 2>/dev/null \
        | awk -F'|' -v c="$codename" '$1 == "Debian" && $2 == c { print $3; exit }')
fi
mirror=${mirror%/}

APT_OPTS=()
index_ok=false
if [ -n "$mirror" ]; then
    mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial"
    signed_by=""
    [ -f "$KEYRING" ] && signed_by=" [signed-by=$KEYRING]"
    echo "deb-src$signed_by $mirror $SUITE main" >"$WORK/apt/sources.list"
    APT_OPTS=(-o "Dir::Etc::SourceList=$WORK/apt/sources.list"
        -o "Dir::Etc::SourceParts=-"
        -o "Dir::State::Lists=$WORK/apt/lists"
        -o "Dir::Cache=$WORK/apt/cache"
        -o "APT::Get::List-Cleanup=0"
        -o "APT::Sandbox::User=root")
    # apt-get update exits 0 when a mirror cannot be reached: look for the
    # Sources index itself.
    if apt-get "${APT_OPTS[@]}" -q update --error-on=any >"$WORK/apt-update.log" 2>&1 \
        && compgen -G "$WORK/apt/lists/*_Sources*" >/dev/null; then
        index_ok=true
    else
        log "warning: reading $SUITE's source index from $mirror failed:"
        tail -5 "$WORK/apt-update.log" >&2
    fi
else
    log "warning: no Debian mirror found in the apt sources (set HUSK_CRIU_MIRROR)"
fi

if ! $index_ok; then
    # Offline: the newest cached build of this script that passes.
    for dir in $(ls -1dt "$CACHE_ROOT"/criu-*-"$SELF_HASH" 2>/dev/null); do
        if usable "$dir/criu"; then
            log "using the cached $dir (source index unavailable)"
            install_from "$dir"
            exit 0
        fi
    done
    die "cannot read Debian $SUITE's source index and no usable cached CRIU build"
fi

# Each source stanza: version, directory, sha256, size and name of the orig
# tarball; the highest version wins.
apt-cache "${APT_OPTS[@]}" showsrc --only-source criu >"$WORK/showsrc" \
    || die "Debian $SUITE has no criu source package"
awk '
    /^Package: /  { pkg = $2 }
    /^Version: /  { ver = $2 }
    /^Directory: / { dir = $2 }
    /^Checksums-Sha256:/ { in_sha = 1; next }
    /^ / && in_sha && $3 ~ /\.orig\.tar\./ { sha = $1; size = $2; file = $3 }
    /^[^ ]/ { in_sha = 0 }
    /^$/ { if (pkg == "criu" && file != "") print ver, dir, sha, size, file
           pkg = ver = dir = sha = size = file = ""; in_sha = 0 }
    END  { if (pkg == "criu" && file != "") print ver, dir, sha, size, file }
' "$WORK/showsrc" >"$WORK/candidates"
best=""
while read -r ver rest; do
    if [ -z "$best" ] || dpkg --compare-versions "$ver" gt "${best%% *}"; then
        best="$ver $rest"
    fi
done <"$WORK/candidates"
[ -n "$best" ] || die "no orig tarball found in $SUITE's criu source stanza(s)"
read -r version directory sha256 size orig <<<"$best"
log "Debian $SUITE criu source: $version ($orig)"

CACHE_DIR="$CACHE_ROOT/criu-${version//:/_}-$SELF_HASH"
if usable "$CACHE_DIR/criu"; then
    log "cached build $CACHE_DIR passes criu check"
    install_from "$CACHE_DIR"
    exit 0
fi

# --- build ---------------------------------------------------------------
t0=$SECONDS
apt_install "${BUILD_PKGS[@]}" "${RUNTIME_PKGS[@]}"

url="$mirror/$directory/$orig"
log "downloading $url"
/usr/lib/apt/apt-helper -o APT::Sandbox::User=root \
    download-file "$url" "$WORK/$orig" "SHA256:$sha256" >"$WORK/download.log" 2>&1 \
    || { cat "$WORK/download.log" >&2; die "downloading $url failed"; }
[ "$(stat -c %s "$WORK/$orig")" = "$size" ] || die "$orig: size differs from the Sources index"

mkdir "$WORK/src"
tar -xf "$WORK/$orig" -C "$WORK/src" --strip-components=1
log "building CRIU $version (make criu), log: $WORK/build.log"
if ! env -u CFLAGS -u CPPFLAGS -u LDFLAGS -u MAKEFLAGS -u MAKELEVEL -u MFLAGS \
    make -C "$WORK/src" -j"$(nproc)" criu >"$WORK/build.log" 2>&1; then
    tail -40 "$WORK/build.log" >&2
    die "building CRIU $version failed"
fi
built="$WORK/src/criu/criu"
[ -x "$built" ] || die "the build made no criu/criu"
log "built in $((SECONDS - t0))s"

if ! "$built" check; then
    "$built" --version >&2 || true
    die "the freshly built CRIU $version fails 'criu check' on kernel $(uname -r)"
fi

mkdir -p "$CACHE_ROOT"
rm -rf "$CACHE_DIR.tmp"
mkdir "$CACHE_DIR.tmp"
cp "$built" "$CACHE_DIR.tmp/criu"
printf 'debian source: criu %s (%s)\norig sha256: %s\nbuilt on: %s, kernel %s, %ds\n' \
    "$version" "$SUITE" "$sha256" "$(date -u +%FT%TZ)" "$(uname -r)" $((SECONDS - t0)) \
    >"$CACHE_DIR.tmp/BUILD-INFO"
rm -rf "$CACHE_DIR"
mv "$CACHE_DIR.tmp" "$CACHE_DIR"
install_from "$CACHE_DIR"
