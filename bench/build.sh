#!/usr/bin/env bash
# Build benchmark: a full build and a no-change rebuild of a 3-stage Dockerfile of 20
# instructions (several RUNs, a COPY of a 2,000-file context), from the local busybox test image.
#
#   bench/build.sh [RUNS]    BERTH=path/to/berth (default: target/release/berth); needs root
#
#   full       `berth build --no-cache` (every RUN container, every layer written): median of RUNS
#   no-change  `berth build` again (every layer from the cache, no container): median of RUNS
# Targets: no-change rebuild under 150 ms; full build no slower than `docker build`. Builds never
# reach a network, so the Dockerfile downloads nothing.
#
# Peer: when `dockerd` and `docker` are installed (Debian: `apt-get install docker.io`; the bench
# never installs them and berth never uses them), the same Dockerfile is built by a private
# dockerd of the bench's own — its own --data-root, --exec-root, --pidfile and socket under the
# bench's temporary directory, --bridge=none --iptables=false --ip6tables=false (no bridge, no
# firewall rules), the busybox image loaded with `docker load` — with the legacy builder
# (DOCKER_BUILDKIT=0, `--network none`), full (--no-cache) and no-change, and the numbers are
# printed beside berth's. The dockerd is stopped and its directories removed at the end.
# BERTH_BENCH_DOCKER=0 skips the peer.
set -euo pipefail
runs="${1:-5}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
berth="${BERTH:-$here/target/release/berth}"
[[ -x "$berth" ]] || { echo "build.sh: no berth binary at $berth (cargo build --release)" >&2; exit 1; }
[[ "$EUID" == 0 ]] || { echo "build.sh: needs root" >&2; exit 1; }
for tool in runc skopeo python3; do
    command -v "$tool" >/dev/null || { echo "build.sh: \`$tool\` is required" >&2; exit 1; }
done

work="$(mktemp -d /tmp/berth-bbench.XXXXXX)"
export BERTH_ROOT="$work/root" BERTH_RUN="$work/run" NO_COLOR=1
unset BERTH_RUNTIME
dockerd_pid="" had_key="" had_run="" had_ctd=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$dockerd_pid" ]]; then
        kill "$dockerd_pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$dockerd_pid" 2>/dev/null || true
        # What dockerd and its containerd write outside their directories: the trust key, the
        # plugin socket directory, the shims' socket directory.
        [[ -n "$had_key" ]] || rm -f /etc/docker/key.json
        [[ -n "$had_run" ]] || rm -rf /run/docker
        [[ -n "$had_ctd" ]] || rm -rf /run/containerd
    fi
    for m in $(grep -o "$work[^ ]*" /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fixtures="${BERTH_BENCH_FIXTURES:-$work/fixtures}"
bash "$here/fixtures/image/build.sh" "$fixtures" >/dev/null
skopeo copy --quiet "oci:$fixtures/oci:busybox" "docker-archive:$work/busybox.tar:berth-test/busybox:latest"
"$berth" image load -i "$work/busybox.tar" >/dev/null

mkdir -p "$work/proj/ctx"
cd "$work/proj"
python3 - <<'PY'
import os
for i in range(2000):
    d = f"ctx/d{i % 40}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i}.txt", "w") as f:
        f.write(f"file {i}\n" * 20)
PY
cat >Dockerfile <<'DOCKERFILE'
FROM berth-test/busybox:latest AS deps
ARG LEVEL=2
RUN mkdir -p /deps && for i in 1 2 3 4 5; do echo "dep $i" > /deps/$i; done
RUN echo "level $LEVEL" > /deps/level
FROM berth-test/busybox:latest AS build
WORKDIR /src
COPY ctx/ ./
RUN find . -type f | wc -l > /count
RUN cat d0/* | md5sum > /sum
RUN tar cf /src.tar .
FROM berth-test/busybox:latest
COPY --from=deps /deps /deps
COPY --from=build /count /sum /out/
ENV APP=bench MODE=release
LABEL org.example.bench=build
WORKDIR /app
RUN echo ready > /app/ready && echo "app:x:1000:1000::/app:/bin/sh" >> /etc/passwd
USER app
EXPOSE 8080
CMD ["cat", "/out/count"]
DOCKERFILE
printf 'name: bbench%s\nservices:\n  app:\n    build: .\n' "$$" >compose.yaml

time_ms() {
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

full=$(for _ in $(seq "$runs"); do time_ms "$berth" build --no-cache -q; done | median)
again=$(for _ in $(seq "$runs"); do time_ms "$berth" build -q; done | median)

# The peer, on a private dockerd.
peer_full="" peer_again=""
if [[ "${BERTH_BENCH_DOCKER:-1}" != 0 ]] && command -v dockerd >/dev/null && command -v docker >/dev/null; then
    d="$work/docker"
    mkdir -p "$d"
    echo '{}' >"$d/daemon.json"
    [[ -e /etc/docker/key.json ]] && had_key=1
    [[ -e /run/docker ]] && had_run=1
    [[ -e /run/containerd ]] && had_ctd=1
    dockerd --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/dockerd.pid" -H "unix://$d/docker.sock" \
        --bridge=none --iptables=false --ip6tables=false --ip-masq=false --userland-proxy=false \
        --config-file "$d/daemon.json" >"$d/dockerd.log" 2>&1 &
    dockerd_pid=$!
    dk() { DOCKER_BUILDKIT=0 DOCKER_CONFIG="$d/client" docker -H "unix://$d/docker.sock" "$@"; }
    for _ in $(seq 150); do dk version >/dev/null 2>&1 && break; sleep 0.2; done
    if dk version >/dev/null 2>&1 && dk load -i "$work/busybox.tar" >/dev/null; then
        peer_full=$(for _ in $(seq "$runs"); do time_ms dk build --no-cache -q --network none -t bbench-docker .; done | median)
        peer_again=$(for _ in $(seq "$runs"); do time_ms dk build -q --network none -t bbench-docker .; done | median)
    else
        echo "build.sh: the private dockerd did not start; see its log:" >&2
        tail -5 "$d/dockerd.log" >&2
    fi
else
    echo "(no dockerd: install Debian's docker.io to compare with \`docker build\`)"
fi

printf '%-26s %10s %14s\n' "" "berth" "docker build"
printf '%-26s %7s ms %11s\n' "full build (--no-cache)" "$full" "${peer_full:+$peer_full ms}"
printf '%-26s %7s ms %11s\n' "no-change rebuild" "$again" "${peer_again:+$peer_again ms}"
echo "(medians of $runs runs; targets: no-change rebuild < 150 ms, full build no slower than docker build)"
