#!/usr/bin/env bash
# make test-install: husk installed the ways a user installs it. As root.
#
#   1. `make install` into a temp DESTDIR (PREFIX=/usr/local): every file is
#      there (and nothing else), binaries identical to the build's;
#   2. `man -l` renders every page without a groff warning, husk.8 and
#      husk-run.8 with their about lines;
#   3. the bash completion completes `husk cre` to `create`;
#   4. `make uninstall` with the same DESTDIR removes every file;
#   5. `make deb`; the .deb installed with `dpkg -i` in a clean Debian 12
#      root (debootstrap --variant=minbase bookworm from this machine's apt
#      mirror, cached as a tarball in /var/cache/husk-test/ named by a hash
#      of its recipe). In that chroot `husk --version` runs from /usr/bin,
#      and `husk run` of a busybox bundle prints what the container says.
#
# Every step that could hang runs under `timeout`; the long ones (make,
# debootstrap, dpkg, husk run) are waited for in the background, so that a
# signal (Ctrl-C, the Makefile's outer timeout) runs the cleanup at once. The
# EXIT trap stops that step's process group, deletes the container, unmounts
# everything under the temp dir and removes it, on failure and Ctrl-C too.
# Missing tools are a failure, never a skip.
#
# Environment: HUSK, SHIM (from the Makefile), MAKE; HUSK_TEST_MIRROR (default:
# the bookworm entry of apt's sources); HUSK_TEST_CACHE (default
# /var/cache/husk-test).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD
MAKE=${MAKE:-make}
TRIPLE="$(uname -m)-unknown-linux-musl"
HUSK=${HUSK:-$REPO/target/$TRIPLE/release/husk}
SHIM=${SHIM:-$REPO/target/$TRIPLE/release-shim/containerd-shim-husk-v2}
CACHE=${HUSK_TEST_CACHE:-/var/cache/husk-test}
T0=$SECONDS

T=""          # temp dir: everything this test makes outside target/ and the cache
ROOT=""       # the Debian chroot, under $T
CID=""        # the container run in the chroot
STATE=/run/husk-install-test   # its --root, inside the chroot
CHILD=""      # the `timeout` of the step running now (its own process group)

say() { printf '%s\n' "$*"; }
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - T0)); }
ok() { printf 'ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# bounded SECONDS LOG COMMAND...: COMMAND under timeout, its output into LOG
# and stdin from /dev/null, in the background and waited for: a trapped
# signal interrupts `wait` (not a foreground command), and cleanup() can stop
# the step, as timeout leads a process group of its own. (The redirections
# are on the command, not on a function call: one around the call would
# also capture the cleanup's messages when a signal lands.)
bounded() {
    local secs=$1 log=$2 rc=0
    shift 2
    timeout -k 5 "$secs" "$@" </dev/null >"$log" 2>&1 &
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}

# Mount points under $T, deepest first.
mounts_under_t() {
    [ -n "$T" ] || return 0
    awk -v t="$T/" 'index($5, t) == 1 || $5 == substr(t, 1, length(t) - 1) { print $5 }' \
        /proc/self/mountinfo | sort -r
}

cleanup() {
    local rc=$? m left
    set +e
    trap '' INT TERM    # the cleanup runs to its end
    if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
        say "cleanup: stopping the running step (process group $CHILD)"
        kill -TERM -- -"$CHILD" 2>/dev/null
        for _ in 1 2 3 4 5 6; do
            kill -0 "$CHILD" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL -- -"$CHILD" 2>/dev/null
        wait "$CHILD" 2>/dev/null
    fi
    if [ -n "$CID" ] && [ -n "$ROOT" ] && [ -d "$ROOT$STATE/$CID" ]; then
        say "cleanup: deleting container $CID"
        timeout -k 5 30 chroot "$ROOT" /usr/bin/husk --root "$STATE" delete --force "$CID" ||
            timeout -k 5 30 "$HUSK" --root "$ROOT$STATE" delete --force "$CID"
    fi
    if [ -n "$CID" ]; then
        # The container's cgroup, in every hierarchy, if husk left it (only
        # an empty cgroup can be removed).
        find /sys/fs/cgroup -maxdepth 2 -type d -name "husk-install-test-$CID" -exec rmdir {} + 2>/dev/null
    fi
    if [ -n "$T" ]; then
        # The chroot (and any mount debootstrap left behind): unmount
        # recursively, lazily as the last resort.
        for m in $(mounts_under_t); do
            mountpoint -q "$m" || continue
            timeout -k 5 30 umount -R "$m" 2>/dev/null || timeout -k 5 30 umount -R -l "$m"
        done
        left=$(mounts_under_t)
        if [ -n "$left" ]; then
            printf 'cleanup: still mounted, %s not removed:\n%s\n' "$T" "$left" >&2
            rc=1
        else
            # --one-file-system: even a mount missed above is not descended into.
            rm -rf --one-file-system "$T"
        fi
    fi
    if [ "$rc" -eq 0 ]; then
        say "PASS: test-install in $((SECONDS - T0)) s"
    else
        say "FAIL: test-install (exit $rc) after $((SECONDS - T0)) s" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- prerequisites -----------------------------------------------------------
step "prerequisites"
[ "$(id -u)" -eq 0 ] || fail "must run as root (dpkg -i in a chroot, a container)"
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null || fail "$1 is missing: apt-get install $2 (.ci/run installs it)"
}
need man man-db
need groff groff-base
need debootstrap debootstrap
need dpkg-deb dpkg
need zstd zstd
need python3 python3
need flock util-linux
need findmnt util-linux
[ -x /bin/busybox ] || fail "/bin/busybox is missing: apt-get install busybox-static"
[ -x "$HUSK" ] && [ -x "$SHIM" ] || fail "$HUSK or $SHIM is missing: run make build"
T=$(mktemp -d /tmp/husk-install-test.XXXXXX)
ok "tools present, work dir $T"

VERSION=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)
ARCH=$(dpkg --print-architecture)
[ -n "$VERSION" ] || fail "no version in Cargo.toml's [workspace.package]"

# The subcommands, as `husk --help` lists them: one man page each.
mapfile -t SUBS < <(timeout 10 "$HUSK" --help |
    awk '/^Commands:/ { c = 1; next } c && NF == 0 { exit } c && $1 != "help" { print $1 }')
for s in create start run state kill delete list exec spec; do
    [[ " ${SUBS[*]} " == *" $s "* ]] || fail "husk --help lists no '$s' (parsed: ${SUBS[*]})"
done

# ---- 1. make install ---------------------------------------------------------
step "make install DESTDIR=\$T/destdir PREFIX=/usr/local"
D=$T/destdir
P=/usr/local
bounded 600 "$T/install.log" "$MAKE" --no-print-directory install DESTDIR="$D" PREFIX="$P" ||
    { cat "$T/install.log"; fail "make install"; }
expected=(
    "${P#/}/bin/husk"
    "${P#/}/bin/containerd-shim-husk-v2"
    "${P#/}/share/man/man8/husk.8"
    "${P#/}/share/bash-completion/completions/husk"
    "${P#/}/share/zsh/site-functions/_husk"
    "${P#/}/share/fish/vendor_completions.d/husk.fish"
)
for s in "${SUBS[@]}"; do
    expected+=("${P#/}/share/man/man8/husk-$s.8")
done
for f in "${expected[@]}"; do
    [ -f "$D/$f" ] || fail "make install did not install /$f"
    case $f in
    */bin/*) want=755 ;;
    *) want=644 ;;
    esac
    mode=$(stat -c %a "$D/$f")
    [ "$mode" = "$want" ] || fail "/$f has mode $mode, not $want"
done
cmp -s "$HUSK" "$D/$P/bin/husk" || fail "installed husk differs from $HUSK"
cmp -s "$SHIM" "$D/$P/bin/containerd-shim-husk-v2" || fail "installed shim differs from $SHIM"
extra=$(comm -13 <(printf '%s\n' "${expected[@]}" | LC_ALL=C sort) \
    <(cd "$D" && find . -type f -o -type l | sed 's|^\./||' | LC_ALL=C sort))
[ -z "$extra" ] || fail "make install installed unexpected files: $extra"
[ "$(head -1 "$D/$P/share/zsh/site-functions/_husk")" = "#compdef husk" ] || fail "_husk has no #compdef husk line"
grep -q '^complete -c husk ' "$D/$P/share/fish/vendor_completions.d/husk.fish" || fail "husk.fish has no 'complete -c husk'"
# zsh and fish are not needed by the test; when present they parse their scripts.
for sh in zsh fish; do
    f=$D/$P/share/zsh/site-functions/_husk
    [ "$sh" = fish ] && f=$D/$P/share/fish/vendor_completions.d/husk.fish
    if command -v "$sh" >/dev/null; then
        timeout 30 "$sh" -n "$f" || fail "$sh -n $f"
        say "$sh -n: the $sh completion parses"
    else
        say "note: $sh not installed: its completion checked by content only"
    fi
done
ok "${#expected[@]} files installed (husk, the shim, ${#SUBS[@]}+1 man pages, 3 completions), nothing else"

# ---- 2. man pages ------------------------------------------------------------
step "man -l"
man8=$D/$P/share/man/man8
render() { # render PAGE: the page as plain text (groff warnings fail the test)
    local txt
    txt=$(MANWIDTH=200 MAN_DISABLE_SECCOMP=1 timeout -k 5 60 man --warnings -l "$1" 2>"$T/man.err") ||
        { cat "$T/man.err" >&2; fail "man -l $1"; }
    [ ! -s "$T/man.err" ] || { cat "$T/man.err" >&2; fail "man -l $1 printed warnings"; }
    [ -n "$txt" ] || fail "man -l $1 rendered nothing"
    printf '%s\n' "$txt" | tr -s ' \t' ' '
}
for page in "$man8"/*.8; do
    render "$page" >/dev/null
done
txt=$(render "$man8/husk.8")
about=$(timeout 10 "$HUSK" --help | head -1)
grep -qF "$about" <<<"$txt" || fail "husk.8 lacks husk's about line '$about': $txt"
grep -qF "husk-run(8)" <<<"$txt" || fail "husk.8 does not list husk-run(8)"
txt=$(render "$man8/husk-run.8")
about=$(timeout 10 "$HUSK" run --help | head -1)
grep -qF "husk-run - $about" <<<"$txt" || fail "husk-run.8 lacks 'husk-run - $about': $txt"
grep -qF -- "--bundle" <<<"$txt" || fail "husk-run.8 does not document --bundle"
ok "all $(ls "$man8" | wc -l) pages render without warnings; husk.8 and husk-run.8 show their about lines"

# ---- 3. bash completion ------------------------------------------------------
step "bash completion"
complete_words() { # complete_words WORD...: the completion of the last word, one per line
    timeout -k 5 30 bash --norc --noprofile -c '
        script=$1; shift
        . "$script"
        spec=$(complete -p husk) || exit 1
        fn=$(sed -n "s/.* -F \([^ ]*\) .*/\1/p" <<<"$spec")
        [ -n "$fn" ] || { echo "no completion function for husk in: $spec" >&2; exit 1; }
        COMP_WORDS=("$@")
        COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        "$fn" husk "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"
    ' _ "$D/$P/share/bash-completion/completions/husk" "$@"
}
got=$(complete_words husk cre) || fail "the bash completion script failed"
grep -qx create <<<"$got" || fail "husk cre<TAB> gave '$got', not create"
got=$(complete_words husk run --bun) || fail "the bash completion script failed"
grep -qx -- --bundle <<<"$got" || fail "husk run --bun<TAB> gave '$got', not --bundle"
ok "husk cre<TAB> -> create, husk run --bun<TAB> -> --bundle"

# ---- 4. make uninstall -------------------------------------------------------
step "make uninstall"
bounded 600 "$T/uninstall.log" "$MAKE" --no-print-directory uninstall DESTDIR="$D" PREFIX="$P" ||
    { cat "$T/uninstall.log"; fail "make uninstall"; }
left=$(cd "$D" && find . ! -type d)
[ -z "$left" ] || fail "make uninstall left: $left"
ok "make uninstall removed all ${#expected[@]} files"

# ---- 5. the Debian package ---------------------------------------------------
step "make deb"
bounded 1800 "$T/deb.log" "$MAKE" --no-print-directory deb || { tail -40 "$T/deb.log"; fail "make deb"; }
DEB=$REPO/target/husk_${VERSION}_${ARCH}.deb
[ -f "$DEB" ] || fail "make deb made no $DEB"
for field in Package=husk Version="$VERSION" Architecture="$ARCH" Section=admin Priority=optional; do
    got=$(dpkg-deb -f "$DEB" "${field%%=*}")
    [ "$got" = "${field#*=}" ] || fail "$DEB: ${field%%=*} is '$got', not '${field#*=}'"
done
[ -n "$(dpkg-deb -f "$DEB" Maintainer)" ] && [ -n "$(dpkg-deb -f "$DEB" Description)" ] ||
    fail "$DEB has no Maintainer or Description"
[ -z "$(dpkg-deb -f "$DEB" Depends)" ] || fail "$DEB has Depends (the binaries are static)"
contents=$(dpkg-deb -c "$DEB")
for f in ./usr/bin/husk ./usr/bin/containerd-shim-husk-v2 ./usr/share/man/man8/husk.8.gz \
    ./usr/share/man/man8/husk-run.8.gz ./usr/share/bash-completion/completions/husk \
    ./usr/share/zsh/vendor-completions/_husk ./usr/share/fish/vendor_completions.d/husk.fish \
    ./usr/share/doc/husk/copyright ./usr/share/doc/husk/examples/containerd-husk.toml; do
    grep -qE " $f\$" <<<"$contents" || fail "$DEB lacks $f"
done
owners=$(awk '{ print $2 }' <<<"$contents" | sort -u)
[ "$owners" = root/root ] || fail "$DEB has files not owned by root/root: $owners"
ok "$(basename "$DEB"): control fields and $(wc -l <<<"$contents") entries"

# A Debian 12 minbase root, from the mirror this machine's apt uses.
apt_mirror() {
    apt-get indextargets --no-release-info --format '$(RELEASE) $(REPO_URI)' 'Created-By: Packages' 2>/dev/null |
        awk '$1 == "bookworm" { print $2; exit }'
}
step "Debian 12 root"
MIRROR=${HUSK_TEST_MIRROR:-$(apt_mirror)}
[ -n "$MIRROR" ] || fail "no bookworm mirror in apt's sources: set HUSK_TEST_MIRROR"
RECIPE="debootstrap --variant=minbase --arch=$ARCH bookworm $MIRROR | tar --numeric-owner --xattrs | zstd (recipe 1)"
KEY=$(printf '%s' "$RECIPE" | sha256sum | cut -c1-16)
TARBALL=$CACHE/bookworm-minbase-$ARCH-$KEY.tar.zst
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -w 3600 9 || fail "$CACHE/.lock: another test-install held it for an hour"
if [ -s "$TARBALL" ]; then
    say "cached: $TARBALL ($RECIPE)"
else
    say "building $TARBALL: $RECIPE"
    t=$SECONDS
    bounded 1800 "$T/debootstrap.log" \
        debootstrap --variant=minbase --arch="$ARCH" bookworm "$T/bootstrap" "$MIRROR" ||
        { tail -30 "$T/debootstrap.log"; fail "debootstrap (log above)"; }
    [ -z "$(mounts_under_t)" ] || fail "debootstrap left mounts: $(mounts_under_t)"
    timeout -k 10 600 tar --numeric-owner --xattrs -C "$T/bootstrap" -cf - . |
        timeout -k 10 600 zstd -q -T0 -o "$TARBALL.tmp.$$" || { rm -f "$TARBALL.tmp.$$"; fail "tar of the root"; }
    mv "$TARBALL.tmp.$$" "$TARBALL"
    rm -rf --one-file-system "$T/bootstrap"
    say "debootstrap + tarball: $((SECONDS - t)) s, $(du -h "$TARBALL" | cut -f1)"
    # Tarballs of older recipes.
    find "$CACHE" -maxdepth 1 -name 'bookworm-minbase-*.tar.zst' ! -path "$TARBALL" -delete
fi
exec 9>&-
ROOT=$T/root
mkdir "$ROOT"
timeout -k 10 600 zstd -q -dc "$TARBALL" | timeout -k 10 600 tar --numeric-owner --xattrs -xpf - -C "$ROOT" ||
    fail "unpacking $TARBALL"
# The chroot's root must be a mount point for the container's pivot_root.
mount --bind "$ROOT" "$ROOT"
mount --make-private "$ROOT"
mount -t proc proc "$ROOT/proc"
mount --rbind /sys "$ROOT/sys"
mount --make-rslave "$ROOT/sys"
mount --rbind /dev "$ROOT/dev"
mount --make-rslave "$ROOT/dev"
[ -d "$ROOT/sys/fs/cgroup" ] && [ -n "$(ls "$ROOT/sys/fs/cgroup")" ] || fail "no cgroups under $ROOT/sys/fs/cgroup"
ok "root unpacked in $ROOT, /proc, /sys (with /sys/fs/cgroup) and /dev mounted"

# COMMAND in the chroot with a clean environment.
IN_ROOT=(/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C)
in_root() { # in_root SECONDS COMMAND...: short commands, output on stdout
    local secs=$1
    shift
    timeout -k 5 "$secs" chroot "$ROOT" "${IN_ROOT[@]}" "$@"
}
in_root_log() { # in_root_log SECONDS LOG COMMAND...: see bounded
    bounded "$1" "$2" chroot "$ROOT" "${IN_ROOT[@]}" "${@:3}"
}

step "dpkg -i in the chroot"
[ ! -e "$ROOT/usr/bin/husk" ] || fail "the clean root already has /usr/bin/husk"
cp "$DEB" "$ROOT/tmp/"
in_root_log 300 "$T/dpkg.log" dpkg -i "/tmp/$(basename "$DEB")" || { cat "$T/dpkg.log"; fail "dpkg -i"; }
status=$(in_root 30 dpkg-query -W -f '${Status} ${Version}' husk)
[ "$status" = "install ok installed $VERSION" ] || fail "dpkg-query says: $status"
path=$(in_root 30 sh -c 'command -v husk')
[ "$path" = /usr/bin/husk ] || fail "husk on the chroot's PATH is '$path'"
ver=$(in_root 30 husk --version) || fail "husk --version in the chroot"
grep -qx "husk version $VERSION" <<<"$ver" || fail "husk --version printed: $ver"
grep -q '^spec: ' <<<"$ver" || fail "husk --version has no spec: line: $ver"
cmp -s "$SHIM" "$ROOT/usr/bin/containerd-shim-husk-v2" || fail "/usr/bin/containerd-shim-husk-v2 differs from $SHIM"
[ -x "$ROOT/usr/bin/containerd-shim-husk-v2" ] || fail "/usr/bin/containerd-shim-husk-v2 is not executable"
ok "dpkg -i: $status; $(head -1 <<<"$ver") from $path"

step "husk run in the chroot"
CID=husk-install-$$-$RANDOM
bounded 120 "$T/bundle.log" python3 integration/bench/bundle.py --runtime "$ROOT/usr/bin/husk" --hostname husk-deb \
    --cgroups-path "/husk-install-test-$CID" "$ROOT/bundle" -- \
    sh -c 'echo "hello from $(hostname) as uid $(id -u), pid $$"' ||
    { cat "$T/bundle.log"; fail "bundle.py"; }
# Into a file, not $(...): a container that outlived husk would keep the
# pipe open.
rc=0
in_root_log 60 "$T/run.out" /usr/bin/husk --root "$STATE" run --bundle /bundle "$CID" || rc=$?
out=$(cat "$T/run.out")
[ "$rc" -eq 0 ] || fail "husk run exited $rc: $out"
grep -qx "hello from husk-deb as uid 0, pid 1" <<<"$out" || fail "husk run printed: $out"
[ ! -e "$ROOT$STATE/$CID" ] || fail "husk run left its state directory $STATE/$CID"
cg=$(find /sys/fs/cgroup -maxdepth 2 -type d -name "husk-install-test-$CID")
[ -z "$cg" ] || fail "husk run left its cgroup: $cg"
ok "husk run: '$out', no state or cgroup left"
