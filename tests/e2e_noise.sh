#!/usr/bin/env bash
# End-to-end test of the quick noise suite: each model is trained once per dataset and seed
# and evaluated under every test-time condition; the report renders the robustness tables
# and the plots. Needs bin/euar and the embedded data (make data). Prints
# "N passed, M failed" and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh
e2e_require bin/euar data/synth-mosi.h5 data/synth-nyud.h5 data/synth-mvsa.h5 data/fmnist-2view.h5

results=$work/results
"$EUAR" suite suites/noise.json --quick --jobs 2 --results "$results" >"$work/run.log" 2>&1
check "quick noise suite exits 0" test $? -eq 0
count=$(find "$results" -maxdepth 1 -name '*.json' ! -name suite.json | wc -l)
check "3 datasets x 6 models give 18 results (got $count)" test "$count" -eq 18

# Each result carries one entry per test-time condition of its dataset, in suite order.
layout=$(python3 - "$results" <<'PY'
import glob, json, os, sys
want = {
    "synth-nyud": ["sp5", "sp10", "g5", "g10"],
    "synth-mvsa": ["sp5", "sp10", "g5", "g10", "blank0.2", "blank0.5", "blank0.8"],
    "fmnist-2view": ["sp5", "sp10", "g5", "g10"],
}
bad = []
for path in glob.glob(os.path.join(sys.argv[1], "*.json")):
    r = json.load(open(path))
    if r.get("format") != "euar-bench-result":
        continue
    labels = [c["label"] for c in r["conditions"]]
    if r["status"] != "ok" or labels != want[r["cell"]["dataset"]]:
        bad.append(path)
    for c in r["conditions"]:
        if "phase=test" not in c["noise"] or "acc" not in c["metrics"]:
            bad.append(path)
print("ok" if not bad else "bad: " + " ".join(bad))
PY
)
check "every result lists its test-time conditions in order ($layout)" test "$layout" = ok

"$EUAR" report "$results" >"$work/report.txt" 2>"$work/report.err"
check "report exits 0" test $? -eq 0
for ds in synth-nyud synth-mvsa fmnist-2view; do
    check "report has the $ds table" grep -q "^## noise: $ds" "$results/report.md"
done
check "mvsa table has every column" \
    grep -q '^| method | clean | sp5 | sp10 | g5 | g10 | blank0.2 | blank0.5 | blank0.8 |$' \
    "$results/report.md"
rows=$(grep -cE '^\| (concat|late|mlp-moe|tmc|qmf|euar) \|' "$results/report.md")
check "18 method rows (got $rows)" test "$rows" -eq 18
check "exact spec under the table" \
    grep -q 'saltpepper:eps=5,p=0.5,convention=10,phase=test@rgb' "$results/report.md"
if command -v gnuplot >/dev/null 2>&1; then
    png=$(ls "$results"/plots/*.png 2>/dev/null | head -n 1)
    check "plots are written" test -n "$png"
    check "plot is a PNG file" sh -c "head -c 8 '$png' | od -An -tx1 | grep -q '89 50 4e 47'"
    svg=$(ls "$results"/plots/*.svg 2>/dev/null | head -n 1)
    check "plot has an SVG twin" grep -q '<svg' "$svg"
fi

"$EUAR" train --data data/synth-nyud.h5 --model euar --test-noise bad=saltpepper:eps=5@text \
    --out "$work/bad.json" 2>"$work/bad.err"
check "noise on a modality the data lacks exits 1" test $? -eq 1
check "the error names the modality" grep -q "text" "$work/bad.err"
check "no result for the bad spec" test ! -e "$work/bad.json"
"$EUAR" train --data data/synth-mvsa.h5 --model euar --test-noise bad=blank:ratio=0.5@image \
    --out "$work/bad2.json" 2>"$work/bad2.err"
check "blank on an image exits 1" test $? -eq 1
"$EUAR" train --data data/synth-mosi.h5 --model qmf --out "$work/bad3.json" \
    >/dev/null 2>"$work/bad3.err"
check "qmf on a regression dataset exits 1" test $? -eq 1
check "qmf error says classification" grep -q "classification" "$work/bad3.err"

echo "e2e noise: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
