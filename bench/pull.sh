#!/usr/bin/env bash
# Pull benchmark: berth pull (download + verify + unpack) vs `skopeo copy docker://... oci:...`
# (download + verify only) of the same 100 MiB, 10-layer image from a local docker-registry,
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
    [[ -n "$reg_pid" ]] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
    rm -rf "$work"
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
image="127.0.0.1:$port/bench/bench:latest"
skopeo copy --quiet --dest-tls-verify=false "oci:$fixtures/oci:bench" "docker://$image"
bytes="$(python3 - "$fixtures/oci" <<'PY'
import json, sys, os
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "index.json")))
m = next(x for x in idx["manifests"] if x.get("annotations", {}).get("org.opencontainers.image.ref.name") == "bench")
man = json.load(open(os.path.join(d, "blobs/sha256", m["digest"][7:])))
print(sum(l["size"] for l in man["layers"]) + man["config"]["size"])
PY
)"

mkdir -p "$work/project"
printf 'services:\n  bench:\n    image: %s\n' "$image" >"$work/project/compose.yaml"

now() { date +%s.%N; }
berth_times=()
skopeo_times=()
for i in $(seq 1 "$runs"); do
    rm -rf "$work/root" "$work/oci"
    sync
    t0="$(now)"
    (cd "$work/project" && BERTH_ROOT="$work/root" "$berth" pull --quiet)
    t1="$(now)"
    skopeo copy --quiet --src-tls-verify=false "docker://$image" "oci:$work/oci:bench"
    t2="$(now)"
    b="$(python3 -c "print(f'{$t1-$t0:.3f}')")"
    s="$(python3 -c "print(f'{$t2-$t1:.3f}')")"
    berth_times+=("$b")
    skopeo_times+=("$s")
    echo "run $i: berth pull ${b}s   skopeo copy ${s}s"
done
python3 - "$bytes" "${berth_times[*]}" "${skopeo_times[*]}" <<'PY'
import sys, statistics
size = int(sys.argv[1])
for name, ts in (("berth pull (download+verify+unpack)", sys.argv[2]), ("skopeo copy to oci: (download+verify)", sys.argv[3])):
    t = [float(x) for x in ts.split()]
    med = statistics.median(t)
    print(f"{name:40s} median {med:.3f}s  {size/1e6/med:7.1f} MB/s  (runs: {', '.join(f'{x:.3f}' for x in t)})")
print(f"image: {size/1e6:.1f} MB of blobs in 10 layers")
PY
