#!/usr/bin/env bash
# Full-scale training figures (make bench-full, opt-in): one epoch of the course MLP
# ([64,32], batch 128, Adam, no augmentation) on
#   course  a full-size SYNTHETIC course copy: 157,000 train tiles, float32, uncompressed
#           (about 17 GB for train, 21 GB with valid and test), data.invalid=drop;
#   pcam    the real PCAM train size: 262,144 SYNTHETIC tiles, uint8, gzip (pcam
#           decompresses each .h5.gz once into its cache, which the timing includes).
# For each: wall time of `pcam train`, the time before the first step as the run's
# manifest records it (reading the splits into memory; hashing the data files), the epoch
# (train steps) and its images/s, validation, and the peak resident memory. The data of
# one copy is removed before the next is made, so WORK needs about 25 GB free.
# Usage: scripts/bench-full-scale.sh [WORK] [OUT] [COPIES]
#   WORK    scratch folder (default ${TMPDIR:-/tmp}/pcam-full-scale)
#   OUT     result file (default results/bench/full-scale.json)
#   COPIES  which copies, comma-separated (default course,pcam)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-${TMPDIR:-/tmp}/pcam-full-scale}
out=${2:-results/bench/full-scale.json}
copies=${3:-course,pcam}
pcam=target/release/pcam
py=.venv/bin/python
mkdir -p "$work"
need_gb=25
free_gb=$(df -Pk "$work" | awk 'NR==2 {print int($4 / 1048576)}')
if [ "$free_gb" -lt "$need_gb" ]; then
    echo "bench-full: $work has ${free_gb} GB free; the full-size copies need about ${need_gb} GB" >&2
    exit 2
fi

one() { # name variant sizes extra-overrides...
    local name=$1 variant=$2 sizes=$3
    shift 3
    local data="$work/$name" runs="$work/runs-$name"
    rm -rf "$data" "$runs" "$work/cache-$name"
    echo "bench-full: $name: synthesising $sizes ($variant)" >&2
    /usr/bin/time -f '%e' -o "$work/$name.synth" \
        "$pcam" -q data synth --out "$data" --variant "$variant" --sizes "$sizes" --seed 11 >/dev/null
    echo "bench-full: $name: one epoch of pcam train" >&2
    /usr/bin/time -f '%e %M' -o "$work/$name.time" \
        env PCAM_CACHE="$work/cache-$name" "$pcam" -q train run.root="$runs" data.dir="$data" \
        model.kind=mlp 'model.hidden=[64,32]' model.dropout=0.2 train.batch_size=128 \
        train.epochs=1 train.augment=false train.scheduler=none train.threads=2 "$@" >/dev/null
    du -sk "$data" | awk '{print $1}' > "$work/$name.size"
    "$py" - "$work" "$name" "$runs" <<'EOF' > "$work/$name.json"
import csv, glob, json, os, sys
work, name, runs = sys.argv[1:4]
(run,) = glob.glob(os.path.join(runs, "*", "*"))
wall, rss_kb = open(os.path.join(work, name + ".time")).read().split()
manifest = json.load(open(os.path.join(run, "manifest.json")))
(epoch,) = list(csv.DictReader(open(os.path.join(run, "history", "epochs.csv"))))
start = manifest["startup_seconds"]
steps = int(epoch["steps"])
print(json.dumps({
    "name": name,
    "data_synthetic": manifest.get("data_synthetic"),
    "data_gb_on_disk": int(open(os.path.join(work, name + ".size")).read()) / 1048576,
    "data_files_hashed": len(manifest["data_sha256"]),
    "synth_seconds": float(open(os.path.join(work, name + ".synth")).read()),
    "wall_seconds": float(wall),
    "load_seconds": start["load"],
    "hash_seconds": start["hash"],
    "epoch_seconds_with_validation": float(epoch["seconds"]),
    "train_images_per_second": float(epoch["images_per_second"]),
    "steps": steps,
    "outside_the_epoch_seconds": float(wall) - float(epoch["seconds"]),
    "peak_rss_gb": int(rss_kb) / 1048576,
    "cpu": manifest["cpu"],
    "threads": 2,
}))
EOF
    rm -rf "$data" "$work/cache-$name"
}

for c in ${copies//,/ }; do
    case $c in
        course) one course course train=157000,valid=16000,test=16000 data.invalid=drop ;;
        pcam) one pcam pcam train=262144,valid=32768,test=32768 ;;
        *) echo "bench-full: unknown copy '$c' (course, pcam)" >&2; exit 2 ;;
    esac
done

"$py" - "$work" "$out" "$copies" <<'EOF'
import json, os, sys
work, out, copies = sys.argv[1:4]
rows = [json.load(open(os.path.join(work, n + ".json"))) for n in copies.split(",")]
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump({"kind": "pcam-full-scale-train", "rows": rows}, f, indent=2)
os.replace(tmp, out)
print("| copy | disk GB | wall s | load s | hash s | epoch s (with validation) | train img/s | outside the epoch s | peak RSS GB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['name']} | {r['data_gb_on_disk']:.1f} | {r['wall_seconds']:.0f} | {r['load_seconds']:.0f} | "
          f"{r['hash_seconds']:.0f} | {r['epoch_seconds_with_validation']:.0f} | {r['train_images_per_second']:.0f} | "
          f"{r['outside_the_epoch_seconds']:.0f} | {r['peak_rss_gb']:.1f} |")
print(f"wrote {out}")
EOF
