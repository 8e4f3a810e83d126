#!/usr/bin/env bash
# End-to-end test of the quick missing-modality suite: run, report, resume, determinism of a
# cell, and bad input that must fail cleanly. Needs bin/euar and the embedded data under
# data/ (make data). Prints "N passed, M failed" and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh
e2e_require bin/euar data/synth-mosi.h5 data/fmnist-2view.h5

results=$work/results
"$EUAR" suite suites/missing.json --quick --jobs 2 --results "$results" >"$work/run1.log" 2>&1
status=$?
check "quick suite exits 0" test "$status" -eq 0
count=$(find "$results" -maxdepth 1 -name '*.json' ! -name suite.json | wc -l)
check "quick suite writes 40 results (got $count)" test "$count" -eq 40
check "every result has status ok" \
    sh -c "! grep -l '\"status\":[[:space:]]*\"failed\"' '$results'/*.json | grep -v suite.json"

"$EUAR" report "$results" >"$work/report.txt" 2>"$work/report.err"
check "report exits 0" test $? -eq 0
check "report.md written" test -s "$results/report.md"
check "summary.csv written" test -s "$results/summary.csv"
check "report has the synth-mosi table" grep -q '^| T+A+V |' "$results/report.md"
check "report has the fmnist-2view table" grep -q '^| image+thumbnail |' "$results/report.md"
check "no missing or failed cell in the report" \
    sh -c "! grep -E '^\\| .*(—|failed)' '$results/report.md'"
# Every data row carries a number in each of the four model columns (one seed: no ±).
rows=$(grep -cE '^\| [^-c][^|]*( \| [0-9]+\.[0-9](±[0-9]+\.[0-9])?[^|]*){4} \|$' "$results/report.md")
check "10 table rows with numbers in every cell (got $rows)" test "$rows" -eq 10

"$EUAR" suite suites/missing.json --quick --jobs 2 --results "$results" >"$work/run2.log" 2>&1
check "rerun exits 0" test $? -eq 0
check "rerun skips the 40 finished cells" grep -q 'skipped 40' "$work/run2.log"

# Determinism: a cell trained again from the command in its log gives the same metrics.
log=$(ls "$results"/logs/*.log | head -n 1)
hash=$(basename "$log" .log)
cmd=$(head -n 1 "$log")
cmd=${cmd#\# }
again=$work/again.json
eval "set -- $cmd"
args=()
while [ $# -gt 0 ]; do
    if [ "$1" = "--out" ]; then
        args+=(--out "$again")
        shift 2
        continue
    fi
    args+=("$1")
    shift
done
"${args[@]}" >/dev/null 2>&1
check "cell reruns from its log command" test -s "$again"
same=$(python3 - "$results/$hash.json" "$again" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
keys = ("metrics", "selected_epoch", "routing", "data_checksum")
curve = lambda r: [{k: v for k, v in e.items() if k != "ms"} for e in r["curve"]]
print("yes" if all(a[k] == b[k] for k in keys) and curve(a) == curve(b) else "no")
PY
)
check "same seed gives identical metrics, curve and routing" test "$same" = yes

# Bad input: clear message, non-zero exit, no result file.
"$EUAR" train --data "$work/none.h5" --model euar --out "$work/bad1.json" 2>"$work/bad1.err"
check "missing data file exits 1" test $? -eq 1
check "missing data file names the file" grep -q "none.h5" "$work/bad1.err"
check "missing data file writes no result" test ! -e "$work/bad1.json"
"$EUAR" train --data data/synth-mosi.h5 --model transformer --out "$work/bad2.json" \
    2>"$work/bad2.err"
check "unknown model exits 1" test $? -eq 1
check "unknown model lists the models" grep -q "mlp-moe" "$work/bad2.err"
"$EUAR" train --data data/synth-mosi.h5 --model euar --set experts=zero \
    --out "$work/bad3.json" 2>"$work/bad3.err"
check "bad setting exits 1" test $? -eq 1
check "bad setting names key and value" grep -q "experts.*zero\|zero.*experts" "$work/bad3.err"
"$EUAR" train --data data/synth-mosi.h5 --model euar --noise "missing:keep=smell" \
    --out "$work/bad4.json" 2>"$work/bad4.err"
check "unknown modality in noise spec exits 1" test $? -eq 1
check "unknown modality is named" grep -q "smell" "$work/bad4.err"
check "no result for bad input" test ! -e "$work/bad2.json" -a ! -e "$work/bad3.json" \
    -a ! -e "$work/bad4.json"
start=$(date +%s)
"$EUAR" train --data data/synth-mosi.h5 --model euar --out "$work/no-such-folder/r.json" \
    2>"$work/bad6.err"
check "result folder that does not exist exits 1" test $? -eq 1
check "result folder is checked before training" test $(($(date +%s) - start)) -lt 5
check "result folder error names the folder" grep -q "no-such-folder" "$work/bad6.err"
printf '{"name": "x", "models": [' >"$work/bad.json"
"$EUAR" suite "$work/bad.json" --results "$work/bad-results" 2>"$work/bad5.err"
check "invalid suite file exits 1" test $? -eq 1
check "invalid suite file is named" grep -q "bad.json" "$work/bad5.err"

# Regression gate: the fresh quick results pass the committed baseline, and a copy with one
# metric worse by more than its tolerance (0.02) fails and names the group and the metric.
baseline=tests/baselines/missing-quick.json
"$EUAR" check "$results" --baseline "$baseline" >"$work/check1.txt" 2>&1
status=$?
check "check against the committed baseline exits 0 (got $status)" test "$status" -eq 0
worse=$work/worse
mkdir -p "$worse"
cp "$results"/*.json "$worse"/
group=$(python3 - "$worse" <<'PY'
import glob, json, sys
for path in sorted(glob.glob(sys.argv[1] + "/*.json")):
    with open(path) as f:
        r = json.load(f)
    c = r.get("cell", {})
    if r.get("format") == "euar-bench-result" and (c.get("dataset"), c.get("condition"),
                                                   c.get("model")) == ("synth-mosi", "T+A", "euar"):
        r["metrics"]["test"]["mib_acc2"] -= 0.05
        with open(path, "w") as f:
            json.dump(r, f, indent=1)
        print("%s/%s/%s/%s" % (c["suite"], c["dataset"], c["condition"], c["model"]))
        break
PY
)
check "worsened copy has the T+A euar cell" test -n "$group"
"$EUAR" check "$worse" --baseline "$baseline" >"$work/check2.txt" 2>&1
status=$?
check "check of the worsened copy exits 1 (got $status)" test "$status" -eq 1
check "check names the worsened group and metric" \
    sh -c "awk -v g='$group' '\$1 == g && \$2 == \"mib_acc2\" && /REGRESSED/' \
        '$work/check2.txt' | grep -q ."
"$EUAR" check "$results" --baseline "$baseline" --tolerance accuracy=0.1 2>"$work/check3.err"
check "unknown metric in --tolerance exits 2" test $? -eq 2
check "unknown metric is named" grep -q "accuracy" "$work/check3.err"
printf '{"format": "euar-bench-baseline",' >"$work/bad-baseline.json"
"$EUAR" check "$results" --baseline "$work/bad-baseline.json" 2>"$work/check4.err"
check "malformed baseline exits 2" test $? -eq 2
check "malformed baseline is named" grep -q "bad-baseline.json" "$work/check4.err"

echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
