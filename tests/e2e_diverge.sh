#!/usr/bin/env bash
# End-to-end test of divergence: a suite whose cells with a learning rate of 10 blow up sits
# beside the same cells at 1e-3. The diverged cells are recorded as failed with the epoch
# and the reason, the suite goes on and exits 0, and every report format shows them as
# failed. Needs bin/euar and data/synth-mosi.h5. Prints "N passed, M failed".
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh

suite=$work/diverge.json
cat >"$suite" <<'JSON'
{
  "format_version": 1,
  "name": "diverge",
  "table": "missing",
  "models": ["euar", "concat"],
  "seeds": [1],
  "noise_seed": 0,
  "settings": {"epochs": 3, "max_train": 128, "batch": 16},
  "datasets": [
    {
      "label": "synth-mosi",
      "path": "data/synth-mosi.h5",
      "conditions": [
        {"label": "T+A", "noise": "missing:keep=text,audio"},
        {"label": "T+A-lr10", "noise": "missing:keep=text,audio", "settings": {"lr": "10"}}
      ]
    }
  ]
}
JSON
results=$work/results
"$EUAR" suite "$suite" --jobs 2 --results "$results" >"$work/run.log" 2>&1
status=$?
check "suite with diverging cells exits 0 (got $status)" test "$status" -eq 0
check "summary counts 2 ok and 2 diverged" \
    grep -q 'ran 4 (2 ok, 2 diverged, 0 failed)' "$work/run.log"
check "progress line says diverged" grep -q 'T+A-lr10 euar seed 1: diverged' "$work/run.log"

# Each result: status, failure epoch and kind, by condition.
states=$(python3 - "$results" <<'PY'
import glob, json, os, sys
out = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    r = json.load(open(path))
    if r.get("format") != "euar-bench-result":
        continue
    f = r["failure"] or {}
    out.append("%s/%s=%s:%s:%s" % (r["cell"]["condition"], r["cell"]["model"], r["status"],
                                  f.get("epoch", "-"), f.get("kind", "-")))
print(" ".join(sorted(out)))
PY
)
echo "  results: $states"
check "good cells are ok" sh -c "echo '$states' | grep -q 'T+A/concat=ok:-:-' &&
    echo '$states' | grep -q 'T+A/euar=ok:-:-'"
check "lr10 cells failed at epoch 1 with parameters exploded" \
    sh -c "echo '$states' | grep -q 'T+A-lr10/concat=failed:1:exploded parameters' &&
        echo '$states' | grep -q 'T+A-lr10/euar=failed:1:exploded parameters'"
reason=$(python3 - "$results" <<'PY'
import glob, json, os, sys
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    r = json.load(open(path))
    if r.get("status") == "failed":
        print(r["failure"]["reason"])
        break
PY
)
check "reason gives the sum of squares and the bound ($reason)" \
    sh -c "echo '$reason' | grep -q 'sum of squares .* above the bound'"

"$EUAR" suite "$suite" --jobs 2 --results "$results" >"$work/rerun.log" 2>&1
check "rerun skips the diverged cells as finished" grep -q 'skipped 4 finished' "$work/rerun.log"

"$EUAR" report "$results" >"$work/report.txt" 2>&1
check "report exits 0" test $? -eq 0
text='failed (exploded parameters, epoch 1)'
check "report.md shows the failed cell" grep -qF "| T+A-lr10 | $text" "$results/report.md"
check "report.md keeps numbers for the good row" \
    grep -qE '^\| T\+A \| [0-9]+\.[0-9]' "$results/report.md"
check "summary.csv shows the failed cell" \
    grep -qF "diverge,synth-mosi,T+A-lr10,euar,mib_acc2,\"$text\",,0" "$results/summary.csv"
tex=$(grep -lF "$text" "$results"/tables/*.tex 2>/dev/null | head -n 1)
check "a LaTeX table shows the failed cell" test -n "$tex"
csv=$(grep -lF "T+A-lr10,euar,status,\"$text\",,0" "$results"/tables/*.csv 2>/dev/null | head -n 1)
check "a paper CSV table shows the failed cell" test -n "$csv"

echo "e2e diverge: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
