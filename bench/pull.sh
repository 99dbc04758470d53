#!/usr/bin/env bash
# Pull benchmark: berth pull (download + verify + unpack) vs `skopeo copy docker://... oci:...`
# (download + verify only) of the same 10-layer images (`bench`: 100 MiB incompressible; `bench-text`:
# 100 MiB of text, ~40 MB gzipped) from a local docker-registry,
# measured in the same run, alternating, fresh destination each time.
#
#   bench/pull.sh [RUNS]        BERTH=path/to/berth (default: target/release/berth)
#
# Prints one line per run and a summary with seconds and MB/s (1 MB = 10^6 bytes of blobs).
set -euo pipefail
runs="${1:-3}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
berth="${BERTH:-$here/target/release/berth}"
[[ -x "$berth" ]] || { echo "pull.sh: no berth binary at $berth (cargo build --release)" >&2; exit 1; }
for tool in docker-registry skopeo python3; do
    command -v "$tool" >/dev/null || { echo "pull.sh: \`$tool\` is required" >&2; exit 1; }
done

work="$(mktemp -d /tmp/berth-bench.XXXXXX)"
reg_pid=""
cleanup() {
    local rc=$?
    if [[ -n "$reg_pid" ]]; then
        kill "$reg_pid" 2>/dev/null || true
        wait "$reg_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

fixtures="${BERTH_BENCH_FIXTURES:-$here/target/berth-fixtures-bench}"
bash "$here/fixtures/image/build.sh" --bench "$fixtures"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$work/registry.yml" <<CFG
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
CFG
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" 2>/dev/null && break
    sleep 0.1
done
now() { date +%s.%N; }

# bench_image REF: seeds the registry with REF, then times both tools RUNS times.
bench_image() {
    local ref="$1" image="127.0.0.1:$port/bench/$1:latest"
    skopeo copy --quiet --dest-tls-verify=false "oci:$fixtures/oci:$ref" "docker://$image"
    local bytes
    bytes="$(python3 - "$fixtures/oci" "$ref" <<'PY'
import json, sys, os
d, ref = sys.argv[1], sys.argv[2]
idx = json.load(open(os.path.join(d, "index.json")))
m = next(x for x in idx["manifests"] if x.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref)
man = json.load(open(os.path.join(d, "blobs/sha256", m["digest"][7:])))
print(sum(l["size"] for l in man["layers"]) + man["config"]["size"])
PY
)"
    mkdir -p "$work/project-$ref"
    printf 'services:\n  bench:\n    image: %s\n' "$image" >"$work/project-$ref/compose.yaml"
    local berth_times=() skopeo_times=() i t0 t1 t2
    for i in $(seq 1 "$runs"); do
        rm -rf "$work/root" "$work/oci"
        sync
        t0="$(now)"
        (cd "$work/project-$ref" && BERTH_ROOT="$work/root" "$berth" pull --quiet)
        t1="$(now)"
        skopeo copy --quiet --src-tls-verify=false "docker://$image" "oci:$work/oci:bench"
        t2="$(now)"
        berth_times+=("$(python3 -c "print(f'{$t1-$t0:.3f}')")")
        skopeo_times+=("$(python3 -c "print(f'{$t2-$t1:.3f}')")")
        echo "$ref run $i: berth pull ${berth_times[-1]}s   skopeo copy ${skopeo_times[-1]}s"
    done
    summary "$ref" "$bytes" "${berth_times[*]}" "${skopeo_times[*]}"
}

summary() {
    python3 - "$@" <<'PY'
import sys, statistics
ref, size = sys.argv[1], int(sys.argv[2])
print(f"== {ref}: {size/1e6:.1f} MB of blobs in 10 layers")
for name, ts in (("berth pull (download+verify+unpack)", sys.argv[3]), ("skopeo copy to oci: (download+verify)", sys.argv[4])):
    t = [float(x) for x in ts.split()]
    med = statistics.median(t)
    print(f"   {name:40s} median {med:.3f}s  {size/1e6/med:7.1f} MB/s  (runs: {', '.join(f'{x:.3f}' for x in t)})")
PY
}

bench_image bench
bench_image bench-text
