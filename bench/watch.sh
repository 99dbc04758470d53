#!/usr/bin/env bash
# Watch benchmark: how long after a file is written on the host it is readable inside the
# container, through `berth watch` (sync rule, no tool in the container involved).
#
#   bench/watch.sh [CHANGES]    BERTH=path/to/berth (default: target/release/berth); needs root
#
# One service (the local busybox test image, `sleep 600`) with `develop.watch: [{path: ./src,
# action: sync, target: /app}]`, brought up with `up -d` and watched with `watch --no-up`.
#   single   CHANGES (default 200) single-file writes, each waited for (read through
#            /proc/<pid>/root, polled every 0.2 ms), 20 ms apart: p50/p95/max
#   burst    1,000 files written at once: until the last one is readable in the container
# Targets: single p95 < 30 ms; burst < 1 s. (Docker Compose waits at least 500 ms per batch.)
set -euo pipefail
changes="${1:-200}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
berth="${BERTH:-$here/target/release/berth}"
[[ -x "$berth" ]] || { echo "watch.sh: no berth binary at $berth (cargo build --release)" >&2; exit 1; }
[[ "$EUID" == 0 ]] || { echo "watch.sh: needs root" >&2; exit 1; }
for tool in runc skopeo python3; do
    command -v "$tool" >/dev/null || { echo "watch.sh: \`$tool\` is required" >&2; exit 1; }
done

work="$(mktemp -d /tmp/berth-wbench.XXXXXX)"
export BERTH_ROOT="$work/root" BERTH_RUN="$work/run" NO_COLOR=1
unset BERTH_RUNTIME
watch_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n "$watch_pid" ]] && kill -INT "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null || true
    (cd "$work/proj" 2>/dev/null && "$berth" down -v >/dev/null 2>&1) || true
    for m in $(grep -o "$work[^ ]*" /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
    table="berth_$(printf '%s' "$BERTH_ROOT" | sha256sum | cut -c1-8)"
    nft delete table inet "$table" 2>/dev/null || true
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fixtures="${BERTH_BENCH_FIXTURES:-$work/fixtures}"
bash "$here/fixtures/image/build.sh" "$fixtures" >/dev/null
skopeo copy --quiet "oci:$fixtures/oci:busybox" "docker-archive:$work/busybox.tar:berth-test/busybox:latest"
"$berth" image load -i "$work/busybox.tar" >/dev/null

mkdir -p "$work/proj/src"
cd "$work/proj"
cat >compose.yaml <<YAML
name: wbench$$
services:
  app:
    image: berth-test/busybox:latest
    command: [sleep, "600"]
    init: true
    network_mode: none
    develop:
      watch:
        - {path: ./src, action: sync, target: /app}
YAML
"$berth" up -d >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
pid="$("$berth" ps --format json | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["Pid"])')"
"$berth" watch --no-up >"$work/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 100); do grep -q watching "$work/watch.log" && break; sleep 0.1; done
grep -q watching "$work/watch.log" || { cat "$work/watch.log" >&2; exit 1; }

python3 - "$work/proj/src" "/proc/$pid/root/app" "$changes" <<'PY'
import os, statistics, sys, time
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

def visible(path, content):
    try:
        with open(path, "rb") as f:
            return f.read() == content
    except OSError:
        return False

def wait(path, content, limit=10.0):
    t0 = time.perf_counter()
    while not visible(path, content):
        if time.perf_counter() - t0 > limit:
            sys.exit(f"watch.sh: {path} not synced after {limit} s")
        time.sleep(0.0002)

lat = []
for i in range(n):
    content = f"change {i}\n".encode()
    name = f"file{i % 10}.txt"
    t0 = time.perf_counter()
    with open(os.path.join(src, name), "wb") as f:
        f.write(content)
    wait(os.path.join(dst, name), content)
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.02)
lat.sort()
p95 = lat[min(len(lat) - 1, int(round(0.95 * len(lat))) - 1)]
print(f"single change, {n} writes: p50 {statistics.median(lat):.1f} ms, p95 {p95:.1f} ms, max {lat[-1]:.1f} ms")

os.makedirs(os.path.join(src, "burst"), exist_ok=True)
t0 = time.perf_counter()
for i in range(1000):
    with open(os.path.join(src, "burst", f"b{i:04}.txt"), "wb") as f:
        f.write(f"burst {i}\n".encode())
for i in range(1000):
    wait(os.path.join(dst, "burst", f"b{i:04}.txt"), f"burst {i}\n".encode())
print(f"burst of 1000 files: all visible after {(time.perf_counter() - t0) * 1000:.0f} ms")
PY
