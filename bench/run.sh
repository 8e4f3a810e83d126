#!/bin/bash
# Times EUAR training epochs of bin/euar (dense and sparse experts) against the PyTorch
# reference bench/torch_euar.py, at 8 and 32 experts, all at one thread. When a CUDA device is
# present the same runs repeat on it (bin/euar --device cuda, torch_euar.py --device cuda), plus
# a large setting on the GPU only: 32 experts, hidden 512, batch 256 on MOSEI-sized data. The
# processes of the implementations alternate within each round, so drifts of the machine
# spread over all of them. The first epoch of every process is dropped as warm-up; medians are
# over all kept epochs of a configuration. Prints a Markdown table and writes it to
# results/bench.md, with the raw JSON lines in results/bench.jsonl.
#
# Environment: BENCH_ROUNDS (default 5), BENCH_EPOCHS (default 7, at least 2), BENCH_DATA
# (default data/synth-mosi.h5), BENCH_EXPERTS (default "8 32"), BENCH_TIMEOUT (seconds per
# process, default 1800), EUAR_BIN (default bin/euar), PYTHON (default /usr/bin/python3, where
# Debian's python3-torch imports), BENCH_OUT (default results/bench.md), BENCH_DEVICES
# (default "cpu", plus "cuda" when bin/euar finds a device), BENCH_LARGE (1 or 0; default 1
# when cuda is among the devices), BENCH_LARGE_DATA (default data/synth-mosei.h5).
set -u

cd "$(dirname "$0")/.." || exit 1

ROUNDS=${BENCH_ROUNDS:-5}
EPOCHS=${BENCH_EPOCHS:-7}
DATA=${BENCH_DATA:-data/synth-mosi.h5}
EXPERTS=${BENCH_EXPERTS:-8 32}
TIMEOUT=${BENCH_TIMEOUT:-1800}
EUAR=${EUAR_BIN:-bin/euar}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${BENCH_OUT:-results/bench.md}
RAW=${OUT%.md}.jsonl
TORCH_APT="apt-get install -y python3-torch python3-h5py python3-numpy libopenblas0-openmp"

die() {
    echo "bench: error: $*" >&2
    exit 1
}

is_count() {
    case $1 in '' | *[!0-9]*) return 1 ;; esac
    [ "$1" -ge "$2" ]
}

LARGE_DATA=${BENCH_LARGE_DATA:-data/synth-mosei.h5}
if [ -z "${BENCH_DEVICES:-}" ]; then
    BENCH_DEVICES=cpu
    [ -x "$EUAR" ] && "$EUAR" bench --device cuda --device-info >/dev/null 2>&1 &&
        BENCH_DEVICES="cpu cuda"
fi
DEVICES=$BENCH_DEVICES
HAVE_CUDA=0
for d in $DEVICES; do
    case $d in
    cpu) ;;
    cuda) HAVE_CUDA=1 ;;
    *) die "BENCH_DEVICES contains '$d'; set cpu, cuda or both" ;;
    esac
done
LARGE=${BENCH_LARGE:-$HAVE_CUDA}

is_count "$ROUNDS" 1 || die "BENCH_ROUNDS=$ROUNDS is invalid; set a whole number of at least 1"
is_count "$EPOCHS" 2 || die "BENCH_EPOCHS=$EPOCHS is invalid; set a whole number of at least 2" \
    "(the first epoch of each process is dropped as warm-up)"
is_count "$TIMEOUT" 1 || die "BENCH_TIMEOUT=$TIMEOUT is invalid; set a number of seconds"
for e in $EXPERTS; do
    is_count "$e" 3 || die "BENCH_EXPERTS contains '$e'; set expert counts of at least 3 (top-3)"
done
[ -x "$EUAR" ] || die "$EUAR not found or not executable; build it with 'make bin/euar'"
[ -f "$DATA" ] || die "$DATA not found; create it with" \
    "'bin/euar data synth mosi --out $DATA --seed 1' or 'make data/synth-mosi.h5'"
[ -x "$PYTHON" ] || die "$PYTHON not found; set PYTHON to a Python 3 interpreter"

if [ "$HAVE_CUDA" = 1 ]; then
    GPU_INFO=$("$EUAR" bench --device cuda --device-info) ||
        die "BENCH_DEVICES contains cuda, but $EUAR finds no usable CUDA device"
else
    GPU_INFO=""
fi
if [ "$LARGE" = 1 ]; then
    [ "$HAVE_CUDA" = 1 ] || die "BENCH_LARGE=1 needs cuda in BENCH_DEVICES: the large setting" \
        "runs on the GPU only"
    [ -f "$LARGE_DATA" ] || die "$LARGE_DATA not found; create it with" \
        "'bin/euar data synth mosei --out $LARGE_DATA --seed 1' or 'make data/synth-mosei.h5'"
fi

HAVE_TORCH=1
TORCH_CUDA=0
if ! "$PYTHON" -c 'import torch, numpy' 2>/dev/null; then
    HAVE_TORCH=0
    echo "bench: PyTorch or numpy does not import under $PYTHON, so the PyTorch rows are" \
        "skipped. Install them (Debian 12) with:" >&2
    echo "    $TORCH_APT" >&2
elif [ "$HAVE_CUDA" = 1 ]; then
    "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
        2>/dev/null && TORCH_CUDA=1
    [ "$TORCH_CUDA" = 1 ] || echo "bench: torch.cuda is not available under $PYTHON, so the" \
        "PyTorch GPU rows are skipped" >&2
fi
# Without h5py the reference trains on random data of the same shapes (--random-data).
HAVE_H5PY=1
"$PYTHON" -c 'import h5py' 2>/dev/null || HAVE_H5PY=0

mkdir -p "$(dirname "$OUT")" || die "cannot create the folder of $OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/euar-bench.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$WORK"' EXIT
RUNS="$WORK/runs.tsv"
: >"$RUNS"

# Runs one process; appends "setting<TAB>round<TAB>status<TAB>command<TAB>JSON line" to RUNS.
# The command is the argument list, after the environment assignments that it runs with.
run_one() {
    local setting=$1 round=$2 log=$3
    shift 3
    local shown="OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1"
    local arg
    for arg in "$@"; do shown+=" $(printf '%q' "$arg")"; done
    echo "bench: round $round/$ROUNDS: $shown" >&2
    local status=0
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 timeout "$TIMEOUT" "$@" \
        >"$WORK/stdout" 2>"$log" || status=$?
    local json
    json=$(grep '^{' "$WORK/stdout" | tail -n 1)
    if [ "$status" -ne 0 ] || [ -z "$json" ]; then
        echo "bench: failed with exit status $status; the end of its stderr:" >&2
        tail -n 5 "$log" >&2
        [ -n "$json" ] || json="{}"
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$setting" "$round" "$status" "$shown" "$json" >>"$RUNS"
}

# The PyTorch data source: the file, or random data of its shapes without h5py.
torch_source() {
    if [ "$HAVE_H5PY" = 1 ]; then
        echo "--data $1"
    else
        echo "--random-data $2"
    fi
}

# One round of a setting on one device: bin/euar dense and sparse, then PyTorch.
# Arguments: setting label, round, device, data file, random-data shapes, experts, hidden, batch.
run_round() {
    local label=$1 round=$2 device=$3 data=$4 shapes=$5 experts=$6 hidden=$7 batch=$8
    local tag compute
    tag=$(echo "$label-$round-$device" | tr -c 'A-Za-z0-9-' '_')
    for compute in dense sparse; do
        run_one "$label" "$round" "$WORK/log-$tag-$compute" \
            "$EUAR" bench --data "$data" --epochs "$EPOCHS" --device "$device" \
            --set "moe_compute=$compute" --set "experts=$experts" --set "hidden=$hidden" \
            --set "batch=$batch"
    done
    if [ "$HAVE_TORCH" = 1 ] && { [ "$device" = cpu ] || [ "$TORCH_CUDA" = 1 ]; }; then
        # shellcheck disable=SC2046 # torch_source prints two words on purpose
        run_one "$label" "$round" "$WORK/log-$tag-torch" \
            "$PYTHON" bench/torch_euar.py $(torch_source "$data" "$shapes") \
            --epochs "$EPOCHS" --device "$device" --experts "$experts" --hidden "$hidden" \
            --batch "$batch"
    fi
}

for experts in $EXPERTS; do
    for round in $(seq 1 "$ROUNDS"); do
        for device in $DEVICES; do
            run_round "$experts experts" "$round" "$device" "$DATA" mosi "$experts" 128 16
        done
    done
done
if [ "$LARGE" = 1 ]; then
    for round in $(seq 1 "$ROUNDS"); do
        run_round "32 experts, H 512, B 256, $(basename "$LARGE_DATA" .h5)" "$round" cuda \
            "$LARGE_DATA" mosei 32 512 256
    done
fi

# Machine and library facts for the page.
CPU_MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
CPU_COUNT=$(nproc)
OPENBLAS_C=$(ldd "$EUAR" 2>/dev/null | awk '/openblas|libblas/ {print $3; exit}')
[ -n "$OPENBLAS_C" ] && OPENBLAS_C=$(readlink -f "$OPENBLAS_C")
OPENBLAS_DEB=$(dpkg-query -W -f '${Package} ${Version}\n' 'libopenblas0-*' 2>/dev/null |
    awk 'NF == 2' | paste -sd ',' - | sed 's/,/, /g')
TORCH_DEB=$(dpkg-query -W -f '${Version}' python3-torch 2>/dev/null)

export RUNS OUT RAW ROUNDS EPOCHS DATA CPU_MODEL CPU_COUNT OPENBLAS_C OPENBLAS_DEB TORCH_DEB \
    HAVE_TORCH TORCH_APT GPU_INFO HAVE_H5PY
"$PYTHON" - <<'EOF'
"""Aggregates the runs of bench/run.sh into a Markdown table."""
import json
import os
import statistics
import sys

env = os.environ
runs = []
with open(env["RUNS"], encoding="utf-8") as f:
    for line in f:
        setting, rnd, status, command, text = line.rstrip("\n").split("\t", 4)
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            record = {}
        runs.append({"setting": setting, "experts": int(setting.split()[0]), "round": int(rnd),
                     "status": int(status), "command": command, "result": record})

# Kind of implementation from the command, so failed runs are still counted in their row.
def impl_of(run):
    device = "cuda" if "--device cuda" in run["command"] else "cpu"
    if "torch_euar.py" in run["command"]:
        return "pytorch" if device == "cpu" else "pytorch-cuda"
    compute = "sparse" if "moe_compute=sparse" in run["command"] else "dense"
    return f"euar-{device}-{compute}"

def reference_of(impl):
    """The PyTorch implementation on the same device."""
    return "pytorch-cuda" if "cuda" in impl else "pytorch"

failed, warnings = [], []
groups = {}
for run in runs:
    impl = impl_of(run)
    result = run["result"]
    epochs = result.get("epoch_s")
    ok = run["status"] == 0 and isinstance(epochs, list) and len(epochs) >= 2
    if not ok:
        failed.append(run)
        continue
    if result.get("impl") not in (None, impl):
        warnings.append(f"`{run['command']}` reported impl {result.get('impl')}, expected {impl}")
    if result.get("experts") not in (None, run["experts"]):
        warnings.append(f"`{run['command']}` reported {result.get('experts')} experts")
    if result.get("status") not in (None, "ok"):
        warnings.append(f"`{run['command']}` reported status {result.get('status')} (diverged)")
    if result.get("threads") not in (None, 1):
        warnings.append(f"`{run['command']}` ran at {result.get('threads')} threads")
    g = groups.setdefault((run["setting"], impl), {"kept": [], "rss": [], "procs": 0, "cmd": ""})
    g["kept"].extend(float(t) for t in result["epoch_s"][1:])
    g["rss"].append(float(result.get("peak_rss_mb", float("nan"))))
    g["procs"] += 1
    g["cmd"] = run["command"]

order = ["pytorch", "euar-cpu-dense", "euar-cpu-sparse",
         "pytorch-cuda", "euar-cuda-dense", "euar-cuda-sparse"]
lines = ["| setting | implementation | median s/epoch | range s/epoch | peak RSS MB "
         "| speed-up vs PyTorch (same device) | processes x kept epochs |",
         "|---|---|---:|---:|---:|---:|---:|"]
settings = []
for run in runs:
    if run["setting"] not in settings:
        settings.append(run["setting"])
for setting in settings:
    for impl in order:
        ref = groups.get((setting, reference_of(impl)))
        ref_median = statistics.median(ref["kept"]) if ref else None
        g = groups.get((setting, impl))
        if g is None:
            if any(impl_of(r) == impl and r["setting"] == setting for r in runs):
                lines.append(f"| {setting} | {impl} | failed | | | | |")
            continue
        median = statistics.median(g["kept"])
        speedup = f"{ref_median / median:.2f}x" if ref_median else "-"
        lines.append(f"| {setting} | {impl} | {median:.4f} | {min(g['kept']):.4f} - "
                     f"{max(g['kept']):.4f} | {max(g['rss']):.1f} | {speedup} | "
                     f"{g['procs']} x {len(g['kept']) // max(g['procs'], 1)} |")

torch_info = next((r["result"] for r in runs
                   if impl_of(r).startswith("pytorch") and r["result"]), {})
torch_mse = {}
for run in runs:
    if impl_of(run) == "pytorch" and "valid_mse" in run["result"]:
        torch_mse.setdefault(run["setting"], []).append(run["result"]["valid_mse"])
page = ["# Training speed: bin/euar against PyTorch", "",
        f"EUAR regression on `{env['DATA']}`, batch 16, hidden 128, top-3, one thread for "
        "everything (GPU rows: one CPU thread driving the GPU; the large setting is GPU only). "
        f"Rounds of alternating processes: {env['ROUNDS']}, with "
        f"{env['EPOCHS']} epochs per process; the first epoch of each process is dropped as warm-up. An epoch is forward, "
        "backward and Adam over all training batches, without evaluation. The range is the "
        "fastest and slowest kept epoch; peak RSS is the largest over the processes.", ""]
page += lines
page += ["", "## Machine and libraries", "",
         f"- CPU: {env['CPU_MODEL'] or 'unknown'}, {env['CPU_COUNT']} logical CPUs available",
         f"- bin/euar BLAS: {env['OPENBLAS_C'] or 'not found by ldd'}",
         f"- Debian OpenBLAS packages: {env['OPENBLAS_DEB'] or 'unknown'}"]
if env["GPU_INFO"]:
    gpu = json.loads(env["GPU_INFO"])
    page += [f"- GPU: {gpu.get('name')}, compute capability {gpu.get('compute_capability')}, "
             f"{gpu.get('memory_mb')} MiB; CUDA driver {gpu.get('driver_version')}, "
             f"runtime {gpu.get('runtime_version')} (bin/euar's toolkit)"]
if env["HAVE_H5PY"] != "1":
    page += ["- h5py did not import, so PyTorch trained on random data of the same shapes "
             "(`--random-data`), not on the data file"]
if torch_info:
    blas_config = torch_info.get("blas_config") or "no OpenBLAS config"
    page += [f"- PyTorch {torch_info.get('torch')} (Debian python3-torch {env['TORCH_DEB']}), "
             f"BLAS {torch_info.get('blas')} ({blas_config})",
             f"- PyTorch valid MSE after {env['EPOCHS']} epochs, median over processes: "
             + ", ".join(f"{statistics.median(v):.4f} at {e}" for e, v in torch_mse.items())
             + f"; predicting the training mean gives {torch_info.get('valid_mse_mean_predictor')}"]
elif env["HAVE_TORCH"] != "1":
    page += [f"- PyTorch: not installed, rows skipped; install with `{env['TORCH_APT']}`"]
page += ["", "## Commands", "", "```"]
seen = []
for run in runs:
    if run["command"] not in seen:
        seen.append(run["command"])
page += seen + ["```"]
if failed or warnings:
    page += ["", "## Problems", ""]
    page += [f"- exit status {r['status']}, round {r['round']}: `{r['command']}`" for r in failed]
    page += [f"- {w}" for w in warnings]
text = "\n".join(page) + "\n"

def write_atomic(path, content):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(content)
    os.replace(tmp, path)

write_atomic(env["OUT"], text)
write_atomic(env["RAW"], "".join(
    json.dumps({"setting": r["setting"], "experts": r["experts"], "round": r["round"],
                "status": r["status"],
                "command": r["command"], "result": r["result"]}) + "\n" for r in runs))
print(text, end="")
print(f"bench: wrote {env['OUT']} and {env['RAW']}", file=sys.stderr)
sys.exit(1 if failed else 0)
EOF
