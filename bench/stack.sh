#!/usr/bin/env bash
# Stack benchmark: wall time of a whole-stack `berth up -d` and of `berth down`.
#
#   bench/stack.sh [RUNS]      BERTH=path/to/berth (default: target/release/berth); needs root
#
# Four projects of 10 services each, all the local busybox test image running `sleep 600` with
# `init: true` (so SIGTERM stops them at once), on the project's default bridge network (real
# namespaces, veths and leases; no published ports):
#   chain     s1 <- s2 <- ... <- s10, each `depends_on` the previous (`service_started`)
#   fan       hub and h1..h9, each depending on hub (`service_started`)
#   chain-hc  the chain, each with `healthcheck: {test: [CMD, "true"], interval: 30s}` and
#             depending on the previous with `condition: service_healthy`
#   fan-hc    the fan-out with those health checks (hub healthy releases the 9)
# Each run times `up -d` (from nothing) and then `down` of every shape; prints each run and the
# medians. Targets: `up -d` of 10 services without health checks < 1 s, `down` < 1 s.
set -euo pipefail
runs="${1:-5}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
berth="${BERTH:-$here/target/release/berth}"
[[ -x "$berth" ]] || { echo "stack.sh: no berth binary at $berth (cargo build --release)" >&2; exit 1; }
[[ "$EUID" == 0 ]] || { echo "stack.sh: needs root" >&2; exit 1; }
for tool in runc skopeo python3 ip; do
    command -v "$tool" >/dev/null || { echo "stack.sh: \`$tool\` is required" >&2; exit 1; }
done
command -v tini-static >/dev/null || { echo "stack.sh: \`init: true\` needs tini-static (Debian package tini)" >&2; exit 1; }

work="$(mktemp -d /tmp/berth-sbench.XXXXXX)"
export BERTH_ROOT="$work/root" BERTH_RUN="$work/run" NO_COLOR=1
unset BERTH_RUNTIME
tag="sb$$"
shapes=(chain fan chain-hc fan-hc)
project() { echo "${tag}${1//-/}"; }

# Pids (not ours) whose environment or command line mentions our run directory: container
# monitors and the per-project supervisors (`berth __supervise`).
ours() {
    local pid
    for p in /proc/[0-9]*; do
        pid="${p#/proc/}"
        [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
        if grep -qsF "$BERTH_RUN" "$p/environ" "$p/cmdline" 2>/dev/null; then echo "$pid"; fi
    done
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for s in "${shapes[@]}"; do
        (cd "$work/$s" 2>/dev/null && "$berth" down >/dev/null 2>&1) || true
    done
    # Whatever `down` could not remove: processes, runtime state, mounts, bridges, firewall table.
    for pid in $(ours); do kill -KILL "$pid" 2>/dev/null || true; done
    for id in $(runc --root "$BERTH_RUN/runtime/runc" list -q 2>/dev/null); do
        runc --root "$BERTH_RUN/runtime/runc" delete -f "$id" >/dev/null 2>&1 || true
    done
    for m in $(grep -o "$work[^ ]*" /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
    for s in "${shapes[@]}"; do
        br="br-$(printf '%s' "$(project "$s")_default" | sha256sum | cut -c1-12)"
        ip link del "$br" 2>/dev/null || true
    done
    table="berth_$(printf '%s' "$BERTH_ROOT" | sha256sum | cut -c1-8)"
    nft delete table inet "$table" 2>/dev/null || true
    for id in $(ls "$BERTH_ROOT/containers" 2>/dev/null); do
        for d in /sys/fs/cgroup/berth-"$id" /sys/fs/cgroup/*/berth-"$id"; do rmdir "$d" 2>/dev/null || true; done
    done
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fixtures="${BERTH_BENCH_FIXTURES:-$work/fixtures}"
bash "$here/fixtures/image/build.sh" "$fixtures" >/dev/null
skopeo copy --quiet "oci:$fixtures/oci:busybox" "docker-archive:$work/busybox.tar:berth-test/busybox:latest"
"$berth" image load -i "$work/busybox.tar" >/dev/null

# compose.yaml of a shape: NAME SHAPE
compose() {
    local hc=0 s prev
    [[ "$2" == *-hc ]] && hc=1
    echo "name: $1"
    echo "services:"
    service() { # NAME DEP
        echo "  $1:"
        echo "    image: berth-test/busybox:latest"
        echo '    command: [sleep, "600"]'
        echo "    init: true"
        if ((hc)); then echo '    healthcheck: {test: [CMD, "true"], interval: 30s}'; fi
        if [[ -n "$2" ]]; then
            echo "    depends_on:"
            echo "      $2:"
            if ((hc)); then echo "        condition: service_healthy"; else echo "        condition: service_started"; fi
        fi
    }
    case "$2" in
        chain*)
            prev=""
            for i in $(seq 1 10); do service "s$i" "$prev"; prev="s$i"; done
            ;;
        fan*)
            service hub ""
            for i in $(seq 1 9); do service "h$i" hub; done
            ;;
    esac
}
for s in "${shapes[@]}"; do
    mkdir -p "$work/$s"
    compose "$(project "$s")" "$s" >"$work/$s/compose.yaml"
done

now() { date +%s%N; }
ms() { python3 -c "print(f'{($2 - $1) / 1e6:.1f}')"; }
median() { python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.1f}')" "$@"; }
fail() { echo "stack.sh: $*" >&2; tail -20 "$work/log" >&2 || true; exit 1; }
declare -A up down
for r in $(seq 1 "$runs"); do
    line="run $r:"
    for s in "${shapes[@]}"; do
        cd "$work/$s"
        t0=$(now); "$berth" up -d >"$work/log" 2>&1 || fail "$s: up -d failed"; t1=$(now)
        n="$("$berth" ps -q --status running 2>/dev/null | wc -l)" || n=0
        [[ "$n" == 10 ]] || { "$berth" ps -a >&2 || true; fail "$s: $n of 10 containers running after up -d"; }
        t2=$(now); "$berth" down >"$work/log" 2>&1 || fail "$s: down failed"; t3=$(now)
        [[ -z "$("$berth" ps -a -q 2>/dev/null)" ]] || fail "$s: containers left after down"
        up[$s]+=" $(ms "$t0" "$t1")"; down[$s]+=" $(ms "$t2" "$t3")"
        line+=" $s up ${up[$s]##* } / down ${down[$s]##* } ms;"
    done
    echo "${line%;}"
done
echo "median of $runs runs (ms), 10 services each:"
printf '  %-9s %9s %9s\n' shape "up -d" down
for s in "${shapes[@]}"; do
    # shellcheck disable=SC2086
    printf '  %-9s %9s %9s\n' "$s" "$(median ${up[$s]})" "$(median ${down[$s]})"
done
