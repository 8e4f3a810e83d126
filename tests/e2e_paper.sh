#!/usr/bin/env bash
# End-to-end test of the quick variants of the paper suites: experts (Fig. 4), ablation
# (Table 4), convergence (Fig. 5) and main (Table 1 and the joint files of Fig. 6), each run
# with `euar suite --quick` and reported with `euar report`, then invalid suites that use the
# keys these suites introduced. Needs bin/euar and the embedded data (make data); the quick
# variants do not read data/synth-mosei.h5. Prints "N passed, M failed" and exits non-zero on
# any failure.
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh
e2e_require bin/euar data/synth-mosi.h5 data/fmnist-2view.h5 data/synth-nyud.h5 data/synth-mvsa.h5

# Prints the number of result files in a results folder.
count_results() {
    find "$1" -maxdepth 1 -name '*.json' ! -name suite.json | wc -l
}

# Evaluates a Python expression for every result of a folder, with the result as `r` and its
# cell entry of suite.json as `c`. Prints "ok", or the files where it is false.
check_results() {
    python3 - "$1" "$2" <<'PY'
import glob, json, os, sys
folder, expr = sys.argv[1], sys.argv[2]
record = json.load(open(os.path.join(folder, "suite.json")))
cells = {c["hash"]: c for c in record["cells"]}
bad = []
for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
    r = json.load(open(path))
    if r.get("format") != "euar-bench-result":
        continue
    c = cells.get(r["hash"])
    if c is None or r["status"] != "ok" or not eval("(" + expr + ")", {"r": r, "c": c}):
        bad.append(os.path.basename(path))
print("ok" if not bad else "bad: " + " ".join(bad))
PY
}

# Runs the quick variant of suites/NAME.json into $work/NAME and reports it.
run_quick() {
    local name=$1 expect=$2
    local results=$work/$name
    "$EUAR" suite "suites/$name.json" --quick --jobs 2 --results "$results" \
        >"$work/$name.log" 2>&1
    check "quick $name suite exits 0" test $? -eq 0
    local count
    count=$(count_results "$results")
    check "quick $name suite has $expect results (got $count)" test "$count" -eq "$expect"
    "$EUAR" report "$results" >"$work/$name.report" 2>&1
    check "report of $name exits 0" test $? -eq 0
    check "report of $name writes report.md" test -s "$results/report.md"
}

# ---- experts (Fig. 4): one cell per expert count, top_k = min(3, experts) ----
run_quick experts 5
state=$(check_results "$work/experts" \
    'int(r["cell"]["settings"]["experts"]) == int(c["condition"][2:]) and
     int(r["cell"]["settings"]["top_k"]) == min(3, int(c["condition"][2:])) and
     c["settings"]["experts"] == r["cell"]["settings"]["experts"]')
check "experts results carry their expert count and top_k ($state)" test "$state" = ok
table=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["table"])' \
    "$work/experts/suite.json")
check "experts suite.json names its table ($table)" test "$table" = experts

# ---- ablation (Table 4): the four loss variants ----
run_quick ablation 4
state=$(check_results "$work/ablation" \
    'r["cell"]["model"] in ("euar", "euar-no-kl", "euar-no-u", "euar-no-kl-no-u") and
     "acc7" in r["metrics"]["test"] and "mib_f1" in r["metrics"]["test"]')
check "ablation results have Acc2, F1 and Acc7 ($state)" test "$state" = ok

# The quick variants skip synth-mosei: a copy whose synth-mosei file is absent still runs.
sed 's|data/synth-mosei.h5|data/absent-mosei.h5|' suites/ablation.json \
    >"$work/ablation-nomosei.json"
"$EUAR" suite "$work/ablation-nomosei.json" --quick --jobs 2 --results "$work/nomosei" \
    >"$work/nomosei.log" 2>&1
check "quick ablation runs without the synth-mosei file" test $? -eq 0
"$EUAR" suite "$work/ablation-nomosei.json" --jobs 2 --results "$work/nomosei-full" \
    >"$work/nomosei-full.log" 2>&1
check "full ablation without the synth-mosei file exits 1" test $? -eq 1
check "the error names the absent file" grep -q "absent-mosei.h5" "$work/nomosei-full.log"

# ---- convergence (Fig. 5): the curve has every epoch ----
run_quick convergence 3
state=$(check_results "$work/convergence" \
    '[e["epoch"] for e in r["curve"]] == list(range(1, int(r["cell"]["settings"]["epochs"]) + 1))
     and len(r["curve"]) >= 3
     and all(isinstance(e.get("valid_metric"), float) for e in r["curve"])')
check "every convergence curve has each epoch's valid metric ($state)" test "$state" = ok

# ---- main (Table 1, Fig. 6): per-dataset models, A-missing, joint files ----
run_quick main 22
state=$(check_results "$work/main" \
    'not (r["cell"]["model"] in ("tmc", "qmf") and r["task"] == "regression") and
     (r["cell"]["dataset"] != "synth-mosi" or
      [x["label"] for x in r["conditions"]] == ["A-missing"])')
check "main results: classifiers only on classification data, A-missing on synth-mosi ($state)" \
    test "$state" = ok
joints=$(python3 - "$work/main" <<'PY'
import json, os, sys
record = json.load(open(os.path.join(sys.argv[1], "suite.json")))
print(" ".join(c["model"] + ":" + c["joint"] for c in record["cells"] if "joint" in c))
PY
)
njoint=$(echo "$joints" | wc -w)
check "suite.json lists 3 joint files ($joints)" test "$njoint" -eq 3
for m in concat mlp-moe euar; do
    check "$m has a joint file entry" sh -c "echo '$joints' | grep -q '\\b$m:'"
done
for entry in $joints; do
    file=$work/main/${entry#*:}
    check "${entry%%:*} joint file exists" test -s "$file"
    check "${entry%%:*} joint file is HDF5" \
        sh -c "head -c 8 '$file' | od -An -tx1 | grep -q '89 48 44 46 0d 0a 1a 0a'"
    # HDF5 stores attribute strings and link names as plain bytes.
    check "${entry%%:*} joint file has its format and both conditions" \
        sh -c "grep -q euar-bench-joint '$file' && grep -q clean '$file' &&
               grep -q A-missing '$file'"
done

# A rerun skips every finished cell; a deleted joint file reruns only its cell.
"$EUAR" suite suites/main.json --quick --jobs 2 --results "$work/main" >"$work/rerun.log" 2>&1
check "rerun of quick main exits 0" test $? -eq 0
check "rerun runs nothing" grep -q "ran 0 (0 ok" "$work/rerun.log"
first=$(echo "$joints" | cut -d' ' -f1)
rm -f "$work/main/${first#*:}"
"$EUAR" suite suites/main.json --quick --jobs 2 --results "$work/main" >"$work/rejoint.log" 2>&1
check "a missing joint file reruns its cell" grep -q "ran 1 (1 ok" "$work/rejoint.log"
check "the joint file is back" test -s "$work/main/${first#*:}"

# ---- invalid suites that use the new keys: exit 1, one message, no results folder ----
bad_suite() {
    local name=$1 needle=$2 text=$3
    printf '%s\n' "$text" >"$work/$name.json"
    "$EUAR" suite "$work/$name.json" --results "$work/$name-results" >/dev/null \
        2>"$work/$name.err"
    check "$name exits 1" test $? -eq 1
    check "$name error says: $needle" grep -qF -- "$needle" "$work/$name.err"
    check "$name creates no results folder" test ! -e "$work/$name-results"
}
mosi='"label": "d", "path": "data/synth-mosi.h5"'
bad_suite condition-topk "condition 'E=2'" \
    '{"format_version": 1, "name": "experts", "models": ["euar"], "seeds": [1],
      "settings": {"epochs": 1, "max_train": 16},
      "datasets": [{'"$mosi"', "conditions": [{"label": "E=2", "settings": {"experts": 2}}]}]}'
bad_suite condition-empty "empty settings object" \
    '{"format_version": 1, "name": "experts", "models": ["euar"], "seeds": [1],
      "datasets": [{'"$mosi"', "conditions": [{"label": "E=2", "settings": {}}]}]}'
bad_suite joint-model "datasets[0].joint_models[0]: model \"late\" is not a model" \
    '{"format_version": 1, "name": "main", "models": ["euar"], "seeds": [1],
      "datasets": [{'"$mosi"', "joint_models": ["late"], "conditions": [{"label": "clean"}]}]}'
bad_suite dataset-model-task "model 'tmc': model 'tmc' needs a classification dataset" \
    '{"format_version": 1, "name": "main", "models": ["euar"], "seeds": [1],
      "settings": {"epochs": 1, "max_train": 16},
      "datasets": [{'"$mosi"', "models": ["euar", "tmc"], "conditions": [{"label": "clean"}]}]}'
bad_suite table-unknown 'unknown table "fig4"' \
    '{"format_version": 1, "name": "x", "table": "fig4", "models": ["euar"], "seeds": [1],
      "datasets": [{'"$mosi"', "conditions": [{"label": "clean"}]}]}'
bad_suite table-missing 'missing key "table"' \
    '{"format_version": 1, "name": "x", "models": ["euar"], "seeds": [1],
      "datasets": [{'"$mosi"', "conditions": [{"label": "clean"}]}]}'
bad_suite skip-all "every dataset is skipped" \
    '{"format_version": 1, "name": "main", "models": ["euar"], "seeds": [1],
      "datasets": [{'"$mosi"', "conditions": [{"label": "clean"}]}],
      "quick": {"datasets": {"d": {"skip": true}}}}'
bad_suite skip-type "skip: expected true or false" \
    '{"format_version": 1, "name": "main", "models": ["euar"], "seeds": [1],
      "datasets": [{'"$mosi"', "conditions": [{"label": "clean"}]}],
      "quick": {"datasets": {"d": {"skip": "yes"}}}}'

echo "e2e paper: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
