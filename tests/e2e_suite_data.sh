#!/usr/bin/env bash
# End-to-end test of a suite's data files. Results of a data file regenerated at the same path
# run again, and the report warns while versions are mixed. A copied suite that maps a dataset
# label to another file is rejected in the results folder of the original. A dataset with NaN
# or Inf features fails before any cell runs (local and Slurm runners) unless it reads them as
# 0. One-seed and one-epoch reports render without gnuplot warnings. Prints "N passed, M
# failed" and exits non-zero on failure.
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh
e2e_require bin/euar
EUAR=$(readlink -f "$EUAR")

# Writes suite file $1 named $2 with dataset label $3 at path $4 and a condition per label in
# $5 (comma-separated; "rgb" keeps only that modality in training and test); $6 is added to
# the dataset object.
write_suite() {
    local conditions="" c noise
    for c in ${5//,/ }; do
        noise=none
        [ "$c" = rgb ] && noise=missing:keep=rgb
        conditions="$conditions${conditions:+, }{\"label\": \"$c\", \"noise\": \"$noise\"}"
    done
    cat >"$1" <<EOF
{"format_version": 1, "name": "$2", "table": "missing", "models": ["euar"], "seeds": [1],
 "settings": {"epochs": 1, "max_train": 32, "batch": 16},
 "datasets": [{"label": "$3", "path": "$4"$6, "conditions": [$conditions]}]}
EOF
}

# ---- a data file regenerated at the same path ----
cd "$work" || exit 1
mkdir -p data
"$EUAR" data synth nyud --out data/x.h5 --seed 1 >/dev/null 2>&1
write_suite mini.json mini x data/x.h5 "clean" ""
"$EUAR" suite mini.json >run1.log 2>&1
check "first run exits 0" test $? -eq 0
check "the default folder is results/mini" test -s results/mini/suite.json
hash1=$(grep -ho '"data_file_hash":[^,]*' results/mini/*.json | sort -u)
check "the result records the data file hash ($hash1)" test -n "$hash1"
"$EUAR" report results/mini >report1.out 2>report1.err
check "one-seed report exits 0" test $? -eq 0
check "one-seed report has no gnuplot warning" sh -c "! grep -i 'warning' report1.err"
check "the flat box plot has a y range" grep -q '^set yrange' results/mini/plots/fig3-box-x.gp
sed 's/"missing"/"convergence"/; s/"mini"/"curve"/' mini.json >curve.json
"$EUAR" suite curve.json >/dev/null 2>&1
"$EUAR" report results/curve >curve.out 2>curve.err
check "a one-epoch convergence report exits 0" test $? -eq 0
check "and has no gnuplot warning" sh -c "! grep -i 'warning' curve.err"

"$EUAR" data synth nyud --out data/x.h5 --seed 2 >/dev/null 2>&1
cp results/mini/data-hashes.txt hashes-before.txt
"$EUAR" suite mini.json --dry-run >dry.out 2>dry.err
check "the dry run leaves the hash cache as it was" \
    cmp -s hashes-before.txt results/mini/data-hashes.txt
check "dry run lists the cell as changed" grep -q ' changed ' dry.out
check "dry run counts it to run" grep -qx '1 cell, 0 finished, 1 to run' dry.out
"$EUAR" suite mini.json >run2.log 2>&1
check "run after the change exits 0" test $? -eq 0
check "one line says why the cell runs again" \
    grep -qx 'dataset x: 1 finished cell is run again because data/x.h5 changed since it ran' \
    run2.log
check "the changed cell runs" grep -q '1 cell, 0 finished, 1 to run' run2.log
hash2=$(grep -ho '"data_file_hash":[^,]*' results/mini/*.json | sort -u)
check "the new result records the new file ($hash2)" test -n "$hash2" -a "$hash1" != "$hash2"
"$EUAR" suite mini.json >run3.log 2>&1
check "a third run has nothing to do" grep -q '1 cell, 1 finished, 0 to run' run3.log
check "the third run reruns nothing" sh -c "! grep -q 'run again' run3.log"

# A result of a previous euar without the field stays finished.
python3 - results/mini <<'PY'
import glob, json, sys
for path in glob.glob(sys.argv[1] + "/*.json"):
    r = json.load(open(path))
    if r.get("format") == "euar-bench-result":
        r["data_file_hash"] = None
        del r["data_file_hash"]
        json.dump(r, open(path, "w"))
PY
"$EUAR" data synth nyud --out data/x.h5 --seed 3 >/dev/null 2>&1
"$EUAR" suite mini.json >run4.log 2>&1
check "a result without data_file_hash stays finished" \
    grep -q '1 cell, 1 finished, 0 to run' run4.log

# Two conditions, one of them run again on a new file: the report warns of the mix.
write_suite two.json two x data/x.h5 "clean,rgb" ""
"$EUAR" suite two.json --results two >/dev/null 2>&1
"$EUAR" data synth nyud --out data/x.h5 --seed 4 >/dev/null 2>&1
"$EUAR" suite two.json --results two --only 'x/clean/*' >two2.log 2>&1
check "--only reruns the one changed cell it selects" \
    grep -q 'dataset x: 1 finished cell is run again' two2.log
"$EUAR" report two >two-report.out 2>two-report.err
check "the report warns of two data file versions" \
    grep -q "dataset 'x' of suite 'two': its results were made from 2 different versions" \
    two-report.err
"$EUAR" suite two.json --results two >/dev/null 2>&1
"$EUAR" report two >two-report.out 2>two-report2.err
check "after a full run the warning is gone" sh -c "! grep -q 'different versions' two-report2.err"

# ---- a copied suite with another file for the same label ----
"$EUAR" data synth nyud --out data/y.h5 --seed 5 >/dev/null 2>&1
cp results/mini/suite.json mini-record.json
write_suite copy.json mini x data/y.h5 "clean" ""
"$EUAR" suite copy.json >copy.log 2>&1
check "the copy in the same folder exits 1" test $? -eq 1
check "the error names both files" \
    sh -c "grep -q 'data/x.h5' copy.log && grep -q 'data/y.h5' copy.log"
check "the error says what to change" \
    sh -c "grep -q 'another \"name\"' copy.log && grep -q -- '--results DIR' copy.log"
check "the record of the first suite is kept" cmp -s mini-record.json results/mini/suite.json
"$EUAR" suite copy.json --dry-run >copy-dry.out 2>&1
check "a dry run of the copy is refused too" test $? -eq 1
write_suite copy.json mine x-mine data/y.h5 "clean" ""
"$EUAR" suite copy.json >copy2.log 2>&1
check "the copy with its own name runs" test $? -eq 0
check "into its own folder" test -s results/mine/suite.json

# ---- NaN and Inf features ----
cd - >/dev/null || exit 1
mkdir -p "$work/fixtures"
/usr/bin/python3 tests/pickle_fixtures.py "$work/fixtures" >/dev/null
"$EUAR" data import-pickle --format mmsa "$work/fixtures/mmsa.pkl" --out "$work/inf.h5" \
    >/dev/null 2>&1
check "the fixture with -inf audio is imported" test -s "$work/inf.h5"
cat >"$work/inf.json" <<EOF
{"format_version": 1, "name": "inf", "table": "main", "models": ["euar"], "seeds": [1],
 "settings": {"epochs": 1},
 "datasets": [{"label": "inf", "path": "$work/inf.h5", "conditions": [{"label": "clean"}]}]}
EOF
"$EUAR" suite "$work/inf.json" --results "$work/inf-results" >"$work/inf.log" 2>&1
check "non-finite features fail the suite" test $? -eq 1
check "the reader's message names the file and array" \
    grep -q "inf.h5: /modalities/audio/data: 3 non-finite values" "$work/inf.log"
check "before any cell runs" test ! -e "$work/inf-results"
"$EUAR" suite "$work/inf.json" --runner slurm --dry-run --results "$work/inf-slurm" \
    >"$work/inf-slurm.out" 2>"$work/inf-slurm.err"
check "the Slurm login node check fails too" test $? -eq 1
check "with the reader's message" grep -q "3 non-finite values" "$work/inf-slurm.err"
check "and prints no job script" test ! -s "$work/inf-slurm.out"
sed 's|"path"|"nonfinite": "zero", "path"|' "$work/inf.json" >"$work/inf-zero.json"
"$EUAR" suite "$work/inf-zero.json" --results "$work/inf-zero" >"$work/inf-zero.log" 2>&1
check "with \"nonfinite\": \"zero\" the suite runs" test $? -eq 0

echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
