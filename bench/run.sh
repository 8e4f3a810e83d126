#!/bin/bash
# Times EUAR training epochs of bin/euar (dense and sparse experts) against the PyTorch
# reference bench/torch_euar.py, at 8 and 32 experts, all at one thread. The processes of the
# three implementations alternate within each round, so drifts of the machine spread over all
# of them. The first epoch of every process is dropped as warm-up; medians are over all kept
# epochs of a configuration. Prints a Markdown table and writes it to results/bench.md, with
# the raw JSON lines in results/bench.jsonl.
#
# Environment: BENCH_ROUNDS (default 5), BENCH_EPOCHS (default 7, at least 2), BENCH_DATA
# (default data/synth-mosi.h5), BENCH_EXPERTS (default "8 32"), BENCH_TIMEOUT (seconds per
# process, default 1800), EUAR_BIN (default bin/euar), PYTHON (default /usr/bin/python3, where
# Debian's python3-torch imports), BENCH_OUT (default results/bench.md).
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

HAVE_TORCH=1
if ! "$PYTHON" -c 'import torch, h5py, numpy' 2>/dev/null; then
    HAVE_TORCH=0
    echo "bench: PyTorch, h5py or numpy does not import under $PYTHON, so the PyTorch rows are" \
        "skipped. Install them (Debian 12) with:" >&2
    echo "    $TORCH_APT" >&2
fi

mkdir -p "$(dirname "$OUT")" || die "cannot create the folder of $OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/euar-bench.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$WORK"' EXIT
RUNS="$WORK/runs.tsv"
: >"$RUNS"

# Runs one process; appends "experts<TAB>round<TAB>status<TAB>command<TAB>JSON line" to RUNS.
# The command is the argument list, after the environment assignments that it runs with.
run_one() {
    local experts=$1 round=$2 log=$3
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
    printf '%s\t%s\t%s\t%s\t%s\n' "$experts" "$round" "$status" "$shown" "$json" >>"$RUNS"
}

for experts in $EXPERTS; do
    for round in $(seq 1 "$ROUNDS"); do
        for compute in dense sparse; do
            run_one "$experts" "$round" "$WORK/log-$experts-$round-$compute" \
                "$EUAR" bench --data "$DATA" --epochs "$EPOCHS" \
                --set "moe_compute=$compute" --set "experts=$experts"
        done
        if [ "$HAVE_TORCH" = 1 ]; then
            run_one "$experts" "$round" "$WORK/log-$experts-$round-torch" \
                "$PYTHON" bench/torch_euar.py --data "$DATA" --epochs "$EPOCHS" \
                --experts "$experts"
        fi
    done
done

# Machine and library facts for the page.
CPU_MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
CPU_COUNT=$(nproc)
OPENBLAS_C=$(ldd "$EUAR" 2>/dev/null | awk '/openblas|libblas/ {print $3; exit}')
[ -n "$OPENBLAS_C" ] && OPENBLAS_C=$(readlink -f "$OPENBLAS_C")
OPENBLAS_DEB=$(dpkg-query -W -f '${Package} ${Version}\n' 'libopenblas0-*' 2>/dev/null |
    awk 'NF == 2' | paste -sd ',' - | sed 's/,/, /g')
TORCH_DEB=$(dpkg-query -W -f '${Version}' python3-torch 2>/dev/null)

export RUNS OUT RAW ROUNDS EPOCHS DATA CPU_MODEL CPU_COUNT OPENBLAS_C OPENBLAS_DEB TORCH_DEB \
    HAVE_TORCH TORCH_APT
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
        experts, rnd, status, command, text = line.rstrip("\n").split("\t", 4)
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            record = {}
        runs.append({"experts": int(experts), "round": int(rnd), "status": int(status),
                     "command": command, "result": record})

# Kind of implementation from the command, so failed runs are still counted in their row.
def impl_of(run):
    if "torch_euar.py" in run["command"]:
        return "pytorch"
    return "euar-cpu-sparse" if "moe_compute=sparse" in run["command"] else "euar-cpu-dense"

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
    g = groups.setdefault((run["experts"], impl), {"kept": [], "rss": [], "procs": 0, "cmd": ""})
    g["kept"].extend(float(t) for t in result["epoch_s"][1:])
    g["rss"].append(float(result.get("peak_rss_mb", float("nan"))))
    g["procs"] += 1
    g["cmd"] = run["command"]

order = ["pytorch", "euar-cpu-dense", "euar-cpu-sparse"]
lines = ["| experts | implementation | median s/epoch | range s/epoch | peak RSS MB "
         "| speed-up vs PyTorch | processes x kept epochs |",
         "|---:|---|---:|---:|---:|---:|---:|"]
for experts in sorted({r["experts"] for r in runs}):
    ref = groups.get((experts, "pytorch"))
    ref_median = statistics.median(ref["kept"]) if ref else None
    for impl in order:
        g = groups.get((experts, impl))
        if g is None:
            if any(impl_of(r) == impl and r["experts"] == experts for r in runs):
                lines.append(f"| {experts} | {impl} | failed | | | | |")
            continue
        median = statistics.median(g["kept"])
        speedup = f"{ref_median / median:.2f}x" if ref_median else "-"
        lines.append(f"| {experts} | {impl} | {median:.4f} | {min(g['kept']):.4f} - "
                     f"{max(g['kept']):.4f} | {max(g['rss']):.1f} | {speedup} | "
                     f"{g['procs']} x {len(g['kept']) // max(g['procs'], 1)} |")

torch_info = next((r["result"] for r in runs if impl_of(r) == "pytorch" and r["result"]), {})
torch_mse = {}
for run in runs:
    if impl_of(run) == "pytorch" and "valid_mse" in run["result"]:
        torch_mse.setdefault(run["experts"], []).append(run["result"]["valid_mse"])
page = ["# Training speed: bin/euar against PyTorch", "",
        f"EUAR regression on `{env['DATA']}`, batch 16, hidden 128, top-3, one thread for "
        f"everything. Rounds of alternating processes: {env['ROUNDS']}, with "
        f"{env['EPOCHS']} epochs per process; the first epoch of each process is dropped as warm-up. An epoch is forward, "
        "backward and Adam over all training batches, without evaluation. The range is the "
        "fastest and slowest kept epoch; peak RSS is the largest over the processes.", ""]
page += lines
page += ["", "## Machine and libraries", "",
         f"- CPU: {env['CPU_MODEL'] or 'unknown'}, {env['CPU_COUNT']} logical CPUs available",
         f"- bin/euar BLAS: {env['OPENBLAS_C'] or 'not found by ldd'}",
         f"- Debian OpenBLAS packages: {env['OPENBLAS_DEB'] or 'unknown'}"]
if torch_info:
    blas_config = torch_info.get("blas_config") or "no OpenBLAS config"
    page += [f"- PyTorch {torch_info.get('torch')} (Debian python3-torch {env['TORCH_DEB']}), "
             f"BLAS {torch_info.get('blas')} ({blas_config})",
             f"- PyTorch valid MSE after {env['EPOCHS']} epochs, median over processes: "
             + ", ".join(f"{statistics.median(v):.4f} at {e} experts"
                         for e, v in sorted(torch_mse.items()))
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
    json.dumps({"experts": r["experts"], "round": r["round"], "status": r["status"],
                "command": r["command"], "result": r["result"]}) + "\n" for r in runs))
print(text, end="")
print(f"bench: wrote {env['OUT']} and {env['RAW']}", file=sys.stderr)
sys.exit(1 if failed else 0)
EOF
