#!/usr/bin/env bash
# Run every fuzz target for a bounded time (default 20 s each), seeded with
# husk's own default config. A crash or panic fails the run.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
secs="${FUZZ_SECONDS:-20}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build -q -p husk
husk="$(cd .. && pwd)/target/debug/husk"
for t in config process options; do mkdir -p "$work/$t"; done
"$husk" spec --bundle "$work/config"
mv "$work/config/config.json" "$work/config/default.json"
"$husk" spec --rootless --bundle "$work/config"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
c = json.load(open(f"{w}/config/default.json"))
json.dump(c["process"], open(f"{w}/process/default.json", "w"))
open(f"{w}/options/basic", "w").write("nosuid,nodev,noexec,ro,rbind,rslave,mode=755,size=1m")
PY
for t in config process options; do
  echo "== fuzzing $t for ${secs}s"
  cargo fuzz run -s none "$t" "$work/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 2>&1 | tail -n 3
done
