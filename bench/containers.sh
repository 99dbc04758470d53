#!/usr/bin/env bash
# Container benchmark: what berth adds over the OCI runtime (runc) itself, measured in the same run.
#
#   bench/containers.sh [RUNS]      BERTH=path/to/berth (default: target/release/berth); needs root
#                                   BERTH_BENCH_FS=loop|tmp: see below
#
# 1. start-to-exit of `berth run --rm -T app true` vs `runc run` of the same bundle (berth's own
#    config.json, rootfs an overlay mount of the same image) with `true` (it deletes the container),
#    and vs `runc create` + `runc start` + `runc delete` of that bundle: the runtime's work split
#    over calls as a monitor must split it (berth's makes two: `run --detach`, then `delete` once
#    the container has exited);
# 2. `berth create` + `berth start` of a service with `scale: 20` (`sleep 60`) vs `runc run
#    --detach` of 20 copies of that bundle (one runtime call each, as berth's monitor makes), and
#    vs `runc create` + `runc start` of them (teardown not timed).
# Prints each run and the medians, and the overhead per container.
set -euo pipefail
runs="${1:-5}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
berth="${BERTH:-$here/target/release/berth}"
[[ -x "$berth" ]] || { echo "containers.sh: no berth binary at $berth (cargo build --release)" >&2; exit 1; }
[[ "$EUID" == 0 ]] || { echo "containers.sh: needs root" >&2; exit 1; }
for tool in runc skopeo python3; do
    command -v "$tool" >/dev/null || { echo "containers.sh: \`$tool\` is required" >&2; exit 1; }
done

# Where both berth's files and the runtime's live (BERTH_BENCH_FS):
#   loop (default): a fresh ext4 file system, made with mkfs.ext4's defaults (a journal, as on a
#        standard host), on a loop device. Creating a file costs the same in every run then. On
#        an ext4 *without* a journal (some VMs' root file system) every new inode first skips
#        those deleted in the last 30 seconds, so the figures there grow with whatever ran before;
#   tmp: a directory under $TMPDIR (or /tmp), on whatever file system that is.
outer="$(mktemp -d "${TMPDIR:-/tmp}/berth-cbench.XXXXXX")"
work="$outer"
if [[ "${BERTH_BENCH_FS:-loop}" == loop ]]; then
    command -v mkfs.ext4 >/dev/null || { echo "containers.sh: mkfs.ext4 is required (or BERTH_BENCH_FS=tmp)" >&2; exit 1; }
    truncate -s 4G "$outer/fs.img"
    mkfs.ext4 -q "$outer/fs.img"
    mkdir "$outer/fs"
    mount -o loop "$outer/fs.img" "$outer/fs"
    work="$outer/fs"
fi
export BERTH_ROOT="$work/root" BERTH_RUN="$work/run" NO_COLOR=1
unset BERTH_RUNTIME
runc_root="$work/runc"
cleanup() {
    local rc=$?
    (cd "$work/proj" 2>/dev/null && "$berth" rm --force >/dev/null 2>&1) || true
    for id in $(runc --root "$runc_root" list -q 2>/dev/null); do runc --root "$runc_root" delete -f "$id" >/dev/null 2>&1 || true; done
    for m in $(grep -o "$outer[^ ]*" /proc/mounts | sort -r); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    for d in /sys/fs/cgroup/*/berth-bench /sys/fs/cgroup/berth-bench; do rmdir "$d" 2>/dev/null || true; done
    # The firewall table of this state root (run containers get the project's network).
    nft delete table inet "berth_$(printf '%s' "$BERTH_ROOT" | sha256sum | cut -c1-8)" 2>/dev/null || true
    rm -rf "$outer"
    exit "$rc"
}
trap cleanup EXIT

fixtures="${BERTH_BENCH_FIXTURES:-$work/fixtures}"
bash "$here/fixtures/image/build.sh" "$fixtures" >/dev/null
skopeo copy --quiet "oci:$fixtures/oci:busybox" "docker-archive:$work/busybox.tar:berth-test/busybox:latest"
"$berth" image load -i "$work/busybox.tar" >/dev/null

mkdir -p "$work/proj"
cd "$work/proj"
cat >compose.yaml <<'EOF'
name: cbench
services:
  app:
    image: berth-test/busybox:latest
    network_mode: none
    command: ["true"]
  many:
    image: berth-test/busybox:latest
    network_mode: none
    scale: 20
    command: ["sleep", "60"]
EOF

now() { date +%s%N; }
# Each timed step starts on a quiet machine: what the previous one left running in the background
# (a monitor deleting its runtime container after `run --rm` returned) does not count against it.
settle() { sleep 0.3; }
ms() { python3 -c "print(f'{($2 - $1) / 1e6:.1f}')" ; }

# A runc bundle equal to berth's: berth's config.json with the rootfs on our own overlay mount.
"$berth" create app >/dev/null 2>&1
id="$("$berth" ps -a -q | head -1)"
layers="$(python3 - "$BERTH_ROOT" "$id" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(f"{sys.argv[1]}/state.db")
cfg = json.loads(db.execute("select config from containers where id = ?", (sys.argv[2],)).fetchone()[0])
print(":".join(reversed(cfg["layers"])))
PY
)"
make_bundle() { # DIR ARGS_JSON
    local b="$1"
    mkdir -p "$b/rootfs" "$b/upper" "$b/work"
    mount -t overlay overlay -o "lowerdir=$layers,upperdir=$b/upper,workdir=$b/work" "$b/rootfs"
    python3 - "$BERTH_ROOT/containers/$id/bundle/config.json" "$b" "$2" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
spec["root"]["path"] = sys.argv[2] + "/rootfs"
spec["process"]["args"] = json.loads(sys.argv[3])
spec["linux"]["cgroupsPath"] = "/berth-bench/" + sys.argv[2].rsplit("/", 1)[1]
import shutil
for m in spec["mounts"]:
    if m["destination"] in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf"):
        copy = sys.argv[2] + "/" + m["destination"].rsplit("/", 1)[1]
        shutil.copy(m["source"], copy)
        m["source"] = copy
json.dump(spec, open(sys.argv[2] + "/config.json", "w"))
PY
}
make_bundle "$work/b-true" '["true"]'
for i in $(seq 1 20); do make_bundle "$work/b-sleep-$i" '["sleep", "60"]'; done
"$berth" rm >/dev/null 2>&1

median() { python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.1f}')" "$@"; }
run_b=(); run_r=(); run_s=(); many_b=(); many_r=(); many_d=()
for r in $(seq 1 "$runs"); do
    settle; t0=$(now); "$berth" run --rm -T app >/dev/null; t1=$(now)
    settle; t2=$(now); runc --root "$runc_root" run --bundle "$work/b-true" bench-true </dev/null >/dev/null; t3=$(now)
    settle; t4=$(now)
    runc --root "$runc_root" create --bundle "$work/b-true" bench-split </dev/null >/dev/null 2>&1
    runc --root "$runc_root" start bench-split
    until runc --root "$runc_root" state bench-split 2>/dev/null | grep -q '"stopped"'; do :; done
    runc --root "$runc_root" delete bench-split; t5=$(now)
    run_b+=("$(ms "$t0" "$t1")"); run_r+=("$(ms "$t2" "$t3")"); run_s+=("$(ms "$t4" "$t5")")

    settle; t0=$(now); "$berth" create many >/dev/null 2>&1; "$berth" start many >/dev/null 2>&1; t1=$(now)
    settle; t2=$(now)
    for i in $(seq 1 20); do
        runc --root "$runc_root" create --bundle "$work/b-sleep-$i" "bench-$i" </dev/null >/dev/null 2>&1
        runc --root "$runc_root" start "bench-$i"
    done
    t3=$(now)
    for i in $(seq 1 20); do runc --root "$runc_root" delete -f "bench-$i" >/dev/null 2>&1; done
    settle; t4=$(now)
    for i in $(seq 1 20); do
        runc --root "$runc_root" run --detach --bundle "$work/b-sleep-$i" "bench-$i" </dev/null >/dev/null 2>&1
    done
    t5=$(now)
    many_b+=("$(ms "$t0" "$t1")"); many_r+=("$(ms "$t2" "$t3")"); many_d+=("$(ms "$t4" "$t5")")
    "$berth" rm --force many >/dev/null 2>&1
    for i in $(seq 1 20); do runc --root "$runc_root" delete -f "bench-$i" >/dev/null 2>&1; done
    echo "run $r: run --rm true: berth ${run_b[-1]} ms, runc run ${run_r[-1]} ms, runc create/start/delete ${run_s[-1]} ms; 20 x create+start: berth ${many_b[-1]} ms, runc run -d ${many_d[-1]} ms, runc create+start ${many_r[-1]} ms"
done
mb="$(median "${run_b[@]}")"; mr="$(median "${run_r[@]}")"; ms_="$(median "${run_s[@]}")"
nb="$(median "${many_b[@]}")"; nr="$(median "${many_r[@]}")"; nd="$(median "${many_d[@]}")"
echo "median run --rm true: berth $mb ms, runc run $mr ms (berth adds $(python3 -c "print(f'{$mb - $mr:.1f}')") ms), runc create/start/delete $ms_ ms (berth adds $(python3 -c "print(f'{$mb - $ms_:.1f}')") ms)"
echo "median 20 x create+start: berth $nb ms, runc run -d $nd ms (berth adds $(python3 -c "print(f'{($nb - $nd) / 20:.1f}')") ms per container), runc create+start $nr ms (berth adds $(python3 -c "print(f'{($nb - $nr) / 20:.1f}')") ms per container)"
