#!/usr/bin/env bash
# End-to-end test of `euar data import-csd`. It writes fixture computational sequences with
# h5py (gzip and plain, float32 and float64, unusual root names, ids such as '-abc_1' and
# '12345') and checks an import value by value against an independent alignment in Python.
# `euar data inspect` then reads the file back and a one-cell suite trains on it. Each bad
# input must fail with its message and leave no output. Needs bin/euar and python3-h5py.
# Prints "N passed, M failed" and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh
e2e_require bin/euar

# Debian's python3-h5py installs for the system interpreter, which a python3 earlier in PATH
# (pyenv, a virtual environment) may not see.
PY=${PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import h5py' 2>/dev/null; then
    echo "FAIL  $PY cannot import h5py; run 'make deps' (Debian package python3-h5py)"
    exit 1
fi

fx=$work/fixtures
mkdir -p "$fx"
"$PY" - "$fx" <<'PY'
import json, sys
import h5py
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(7)
folds = {"train": ["-abc_1", "12345", "vid_three"], "valid": ["Q_x-9"],
         "test": ["88888", "zz-last"]}
videos = folds["train"] + folds["valid"] + folds["test"] + ["orphan"]
split_of = {v: s for s, vs in enumerate(folds.values()) for v in vs}
EPS, STEPS = 1e-5, 8


def write_csd(path, root, entries, dtype, gzip):
    with h5py.File(path, "w") as f:
        g = f.create_group(root)
        for name, (intervals, features) in entries.items():
            e = g.create_group("data/" + name)
            opts = {"compression": "gzip", "compression_opts": 4} if gzip else {}
            e.create_dataset("features", data=np.asarray(features, dtype=dtype), **opts)
            e.create_dataset("intervals", data=np.asarray(intervals, dtype=np.float64), **opts)
        m = g.create_group("metadata")
        m.create_dataset("root name", data=[json.dumps(root)], dtype=h5py.string_dtype())


def rows(step, end, width, video):
    starts = np.arange(0, end, step)
    iv = np.stack([starts, starts + step], axis=1)
    base = (videos.index(video) + 1) * 1000
    ft = base + np.arange(len(starts))[:, None] * 10 + np.arange(width)[None, :]
    return iv, ft.astype(np.float64)


# Labels in the CMU-MOSEI layout: 7 columns, sentiment first. Segment k of a video spans
# [2k, 2k + 1.5] s; "-abc_1" has an extra zero-length row, "12345" row 1 a label of 3.4.
labels = {}
for v in videos:
    iv = [[2 * k, 2 * k + 1.5] for k in range(4)]
    y = np.round(rng.uniform(-3, 3, 4) * 3) / 3
    if v == "-abc_1":
        iv.append([9.0, 9.0])
        y = np.append(y, 1.0)
    if v == "12345":
        y[1] = 3.4
    feats = np.concatenate([y[:, None], rng.uniform(0, 1, (len(y), 6))], axis=1)
    labels[v] = (np.array(iv), feats)
write_csd(f"{out}/labels.csd", "CMU_MOSEI_Labels v1 (test)", labels, np.float32, True)

mods = {
    "text": (0.3, 5, np.float32, True, "glove vectors"),
    "audio": (0.1, 3, np.float64, False, "COVAREP"),
    "vision": (0.25, 2, np.float32, True, "FACET 4.2"),
}
seqs = {}
for name, (step, width, dtype, gzip, root) in mods.items():
    entries = {}
    for v in videos:
        # Vision of "zz-last" stops at 4 s, so its segments 2 and 3 have no vision rows.
        end = 4.0 if (name == "vision" and v == "zz-last") else 8.0
        iv, ft = rows(step, end, width, v)
        if name == "audio" and v == "88888":
            ft[5, 1] = -np.inf  # in segment 0: kept and counted as non-finite
        entries[v] = (iv, ft)
    seqs[name] = {v: (iv, ft.astype(dtype).astype(np.float64)) for v, (iv, ft) in
                  entries.items()}
    write_csd(f"{out}/{name}.csd", root, entries, dtype, gzip)


def align(iv, ft, start, end):
    order = np.argsort(iv[:, 0], kind="stable")
    iv, ft = iv[order], ft[order]
    lo, hi = np.maximum(iv[:, 0], start), np.minimum(iv[:, 1], end)
    sel = ft[hi - lo > EPS]
    n = len(sel)
    steps = np.zeros((STEPS, ft.shape[1]))
    if n <= STEPS:
        steps[:n] = sel
    else:
        for j in range(STEPS):
            steps[j] = sel[j * n // STEPS:(j + 1) * n // STEPS].mean(axis=0)
    return steps, min(n, STEPS), n


expected = {"ids": [], "split": [], "labels": [], "lengths": {m: [] for m in mods},
            "features": {m: [] for m in mods}}
for v in sorted(videos):  # HDF5 lists entries in name order
    if v not in split_of:
        continue
    iv, feats = labels[v]
    for i, (start, end) in enumerate(iv):
        if end - start < EPS:
            continue
        per_mod = {m: align(*seqs[m][v], start, end) for m in mods}
        if any(n == 0 for _, _, n in per_mod.values()):
            continue
        expected["ids"].append(f"{v}[{i}]")
        expected["split"].append(split_of[v])
        expected["labels"].append(float(np.clip(np.float32(feats[i, 0]), -3, 3)))
        for m, (steps, length, _) in per_mod.items():
            expected["lengths"][m].append(length)
            expected["features"][m].append(steps.tolist())
json.dump(expected, open(f"{out}/expected.json", "w"))
json.dump(folds, open(f"{out}/folds.json", "w"))
json.dump({"train": ["-abc_1", "12345"], "valid": ["12345"], "test": ["88888"]},
          open(f"{out}/folds-dup.json", "w"))
open(f"{out}/folds-bad.json", "w").write('{"train": ["-abc_1"], "valid": ')

# Bad inputs.
words = {"-abc_1": (np.array([[0.0, 0.3]]), np.array([[b"hello"]]))}
with h5py.File(f"{out}/words.csd", "w") as f:
    e = f.create_group("words/data/-abc_1")
    e["features"] = np.array([[b"hello"]], dtype="S5")
    e["intervals"] = np.array([[0.0, 0.3]])
with h5py.File(f"{out}/nodata.csd", "w") as f:
    f.create_group("COVAREP/metadata")
with h5py.File(f"{out}/nointervals.csd", "w") as f:
    f["COVAREP/data/-abc_1/features"] = np.zeros((2, 3))
with h5py.File(f"{out}/dims.csd", "w") as f:
    f["COVAREP/data/-abc_1/features"] = np.zeros((2, 3))
    f["COVAREP/data/-abc_1/intervals"] = np.array([[0, 1], [1, 2]], dtype=np.float64)
    f["COVAREP/data/12345/features"] = np.zeros((2, 4))
    f["COVAREP/data/12345/intervals"] = np.array([[0, 1], [1, 2]], dtype=np.float64)
with h5py.File(f"{out}/tworoots.csd", "w") as f:
    f.create_group("a/data")
    f.create_group("b/data")
with h5py.File(f"{out}/backwards.csd", "w") as f:
    f["FACET/data/-abc_1/features"] = np.zeros((1, 3))
    f["FACET/data/-abc_1/intervals"] = np.array([[2.0, 1.0]])
open(f"{out}/page.csd", "w").write("<!DOCTYPE html>\n<html><body>Not Found</body></html>\n")
PY
check "fixtures written" test -s "$fx/expected.json"

A=(--text "$fx/text.csd" --audio "$fx/audio.csd" --vision "$fx/vision.csd"
   --labels "$fx/labels.csd" --folds "$fx/folds.json" --steps 8)
out=$work/mini.h5
"$EUAR" data import-csd "${A[@]}" --out "$out" >"$work/import.out" 2>"$work/import.err"
check "import exits 0" test $? -eq 0
check "import reports the written samples" \
    grep -q "wrote mini to .*mini.h5: 22 samples (train 12, valid 4, test 6)" "$work/import.out"
check "import counts the zero-length label row" \
    grep -q "29 segments read, 1 of zero duration skipped, 4 in no fold" "$work/import.out"
check "import warns about the video in no fold" \
    grep -q "dropped 4 label segments of 1 video in no fold.*'orphan'" "$work/import.err"
check "import counts segments without vision rows" \
    grep -q "vision: dropped 2 label segments without vision rows (the first is 'zz-last\[2\]')" \
    "$work/import.err"
check "import warns about the clipped label" \
    grep -q "clipped 1 label outside \[-3, 3\] (min 3.4, max 3.4 of the clipped)" "$work/import.err"
check "import counts the kept non-finite value" \
    grep -q "audio: kept 1 non-finite value (NaN or Inf) in 1 sample;" "$work/import.err"
check "import reports averaged audio segments" grep -q "audio .*averaged" "$work/import.out"

"$PY" - "$out" "$fx/expected.json" >"$work/values.txt" 2>&1 <<'PY'
import json, sys
import h5py
import numpy as np

f, want = h5py.File(sys.argv[1], "r"), json.load(open(sys.argv[2]))
problems = []
ids = [s.decode() for s in f["samples/id"][:]]
if ids != want["ids"]:
    problems.append(f"ids {ids} != {want['ids']}")
if f["samples/split"][:].tolist() != want["split"]:
    problems.append("splits differ")
if not np.allclose(f["labels"][:], want["labels"], atol=1e-6):
    problems.append("labels differ")
if [m.decode() if isinstance(m, bytes) else m for m in f.attrs["modalities"]] != \
        ["text", "audio", "vision"]:
    problems.append(f"modalities {f.attrs['modalities']}")
for m in ("text", "audio", "vision"):
    if f[f"modalities/{m}/lengths"][:].tolist() != want["lengths"][m]:
        problems.append(f"{m} lengths differ")
    got, exp = f[f"modalities/{m}/data"][:], np.array(want["features"][m])
    if got.shape != exp.shape or not np.allclose(got, exp, rtol=1e-6, equal_nan=True):
        problems.append(f"{m} features differ: shape {got.shape} vs {exp.shape}")
print("\n".join(problems) if problems else "values ok")
PY
check "ids, splits, labels, lengths and features match the alignment" \
    grep -qx "values ok" "$work/values.txt"

"$EUAR" data inspect "$out" >"$work/inspect1.out" 2>&1
check "inspect rejects the kept non-finite value by default" test $? -eq 1
check "inspect names the non-finite value" grep -q "non-finite" "$work/inspect1.out"
"$EUAR" data inspect "$out" --nonfinite zero >"$work/inspect2.out" 2>&1
check "inspect --nonfinite zero accepts the import" test $? -eq 0
check "inspect reads 22 samples" \
    grep -q "samples   22 (train 12, valid 4, test 6)" "$work/inspect2.out"
check "inspect reads audio [22, 8, 3]" grep -q "audio .*\[22, 8, 3\]" "$work/inspect2.out"

# A finite import (text and vision) in a one-cell suite.
clean=$work/clean.h5
"$EUAR" data import-csd --text "$fx/text.csd" --vision "$fx/vision.csd" \
    --labels "$fx/labels.csd" --folds "$fx/folds.json" --out "$clean" --name csd-mini \
    >/dev/null 2>&1
check "text and vision import exits 0" test $? -eq 0
cat >"$work/suite.json" <<EOF
{
  "format_version": 1,
  "name": "missing",
  "models": ["concat"],
  "seeds": [1],
  "settings": {"epochs": 2, "batch": 4},
  "datasets": [
    {"label": "csd-mini", "path": "$clean",
     "conditions": [{"label": "T+V", "noise": "missing:keep=text,vision"}]}
  ]
}
EOF
"$EUAR" suite "$work/suite.json" --jobs 1 --results "$work/results" >"$work/suite.log" 2>&1
check "suite trains on the imported file" test $? -eq 0
check "suite writes one ok result" \
    sh -c "grep -l '\"status\":[[:space:]]*\"ok\"' '$work'/results/*.json | grep -vc suite.json \
           | grep -qx 1"

# Bad input: exit 1, one message naming the file and the problem, no output file.
expect_failure() {
    local name=$1 pattern=$2
    shift 2
    local target=$work/bad.h5
    rm -f "$target"
    "$EUAR" data import-csd "$@" --out "$target" >"$work/bad.out" 2>"$work/bad.err"
    local status=$?
    check "$name exits 1" test "$status" -eq 1
    check "$name: message" grep -q -- "$pattern" "$work/bad.err"
    check "$name: no output file" test ! -e "$target"
    if ! grep -q -- "$pattern" "$work/bad.err"; then
        sed 's/^/      /' "$work/bad.err"
    fi
}

L=(--labels "$fx/labels.csd" --folds "$fx/folds.json")
head -c 3000 "$fx/audio.csd" >"$fx/truncated.csd"
expect_failure "truncated file" "truncated.csd: not an HDF5 file or truncated" \
    --audio "$fx/truncated.csd" "${L[@]}"
expect_failure "HTML page saved as .csd" "page.csd: the file is an HTML page" \
    --audio "$fx/page.csd" "${L[@]}"
expect_failure "missing data group" "/COVAREP/data is missing" \
    --audio "$fx/nodata.csd" "${L[@]}"
expect_failure "missing intervals" "/COVAREP/data/-abc_1/intervals is missing" \
    --audio "$fx/nointervals.csd" "${L[@]}"
expect_failure "mismatched feature widths" \
    "/COVAREP/data/12345/features has width 4 but /COVAREP/data/-abc_1/features has 3" \
    --audio "$fx/dims.csd" "${L[@]}"
expect_failure "two top-level groups" "2 top-level groups (the first is 'a')" \
    --audio "$fx/tworoots.csd" "${L[@]}"
expect_failure "word sequence of strings" "stores strings.*GloVe" \
    --text "$fx/words.csd" "${L[@]}"
expect_failure "strict with a segment without vision rows" \
    "\-\-vision .*segment 'zz-last\[2\]' (\[4.000, 5.500\] s) has no row: none of the 16 rows" \
    --vision "$fx/vision.csd" "${L[@]}" --strict
expect_failure "video listed in two folds" "video '12345' is listed twice (in train and valid)" \
    --audio "$fx/audio.csd" --labels "$fx/labels.csd" --folds "$fx/folds-dup.json"
expect_failure "malformed folds file" "folds-bad.json: not a JSON object" \
    --audio "$fx/audio.csd" --labels "$fx/labels.csd" --folds "$fx/folds-bad.json"
expect_failure "standard folds that do not match" "no segment remains" \
    --audio "$fx/audio.csd" --labels "$fx/labels.csd" --folds mosi
expect_failure "missing labels file" "labels $fx/none.csd: file not found" \
    --audio "$fx/audio.csd" --labels "$fx/none.csd" --folds "$fx/folds.json"
expect_failure "no modality" "no modality given" "${L[@]}"
expect_failure "invalid steps" "\-\-steps: '0' is invalid" --audio "$fx/audio.csd" "${L[@]}" \
    --steps 0
cp "$fx/labels.csd" "$work/bad.h5.keep"
"$EUAR" data import-csd --audio "$fx/audio.csd" "${L[@]}" --out "$fx/labels.csd" \
    >/dev/null 2>"$work/same.err"
check "output over an input exits 1" test $? -eq 1
check "output over an input keeps the input" cmp -s "$fx/labels.csd" "$work/bad.h5.keep"

expect_failure "audio features as labels" \
    "\-\-labels $fx/audio.csd: the features of /COVAREP/data have 3 columns; a label sequence has 1 column (CMU-MOSI opinion labels) or 7" \
    --vision "$fx/vision.csd" --labels "$fx/audio.csd" --folds "$fx/folds.json"
expect_failure "labels given as a modality" \
    "\-\-text $fx/../fixtures/labels.csd and \-\-labels $fx/labels.csd are the same file, so the label would be an input feature" \
    --text "$fx/../fixtures/labels.csd" "${L[@]}"
expect_failure "two modalities from one file" \
    "\-\-audio $fx/audio.csd and \-\-vision $fx/./audio.csd are the same file" \
    --audio "$fx/audio.csd" --vision "$fx/./audio.csd" "${L[@]}"
expect_failure "option given twice" "\-\-text given twice; pass each option once" \
    --text "$fx/text.csd" --text "$fx/audio.csd" "${L[@]}"
expect_failure "invalid --nonfinite-rows" "\-\-nonfinite-rows: 'drop' is invalid" \
    --audio "$fx/audio.csd" "${L[@]}" --nonfinite-rows drop
expect_failure "error prefix of a read error" \
    "^euar: error: \-\-vision $fx/backwards.csd: /FACET/data/-abc_1/intervals: row 0 is \[2, 1\]" \
    --vision "$fx/backwards.csd" "${L[@]}"
"$EUAR" data import-csd --audio "$fx/audio.csd" "${L[@]}" --out "$work/none/x.h5" \
    >/dev/null 2>"$work/nofolder.err"
check "--out in a missing folder exits 1" test $? -eq 1
check "--out in a missing folder: message" \
    grep -qx "euar: error: --out: folder $work/none does not exist; create it first" \
    "$work/nofolder.err"
"$EUAR" data import-csd --audio "$fx/audio.csd" "${L[@]}" --out "$work" \
    >/dev/null 2>"$work/isfolder.err"
check "--out that is a folder exits 1" test $? -eq 1
check "--out that is a folder: message" grep -q "\-\-out: $work is a folder" "$work/isfolder.err"

# With --steps 1 every step averages its segment's rows, so the -inf audio row makes its
# step -inf unless --nonfinite-rows skip leaves it out.
"$EUAR" data import-csd --audio "$fx/audio.csd" "${L[@]}" --steps 1 --out "$work/mean.h5" \
    >"$work/mean.out" 2>"$work/mean.err"
check "--steps 1 import exits 0" test $? -eq 0
check "--steps 1 keeps the -inf in its step" \
    grep -q "audio: kept 1 non-finite value (NaN or Inf) in 1 sample;" "$work/mean.err"
check "--steps 1 summary uses the singular 'row'" \
    grep -q "samples with more than 1 row averaged)" "$work/mean.out"
"$EUAR" data import-csd --audio "$fx/audio.csd" "${L[@]}" --steps 1 --out "$work/skip.h5" \
    --nonfinite-rows skip >"$work/skip.out" 2>"$work/skip.err"
check "--nonfinite-rows skip exits 0" test $? -eq 0
check "--nonfinite-rows skip counts the row" \
    grep -q "audio: left 1 row with NaN or Inf out of averaged steps" "$work/skip.err"
check "--nonfinite-rows skip keeps no non-finite value" sh -c "! grep -q 'kept' '$work/skip.err'"
"$EUAR" data inspect "$work/skip.h5" >/dev/null 2>&1
check "--nonfinite-rows skip output loads without --nonfinite zero" test $? -eq 0

# inspect recognises a computational sequence and points to import-csd.
"$EUAR" data inspect "$fx/audio.csd" >/dev/null 2>"$work/inspect-csd.err"
check "inspect of a .csd exits 1" test $? -eq 1
check "inspect of a .csd points to import-csd" \
    grep -q "audio.csd: a CMU-MultimodalSDK computational sequence (root group 'COVAREP'), not a euar-bench dataset file; convert it with 'euar data import-csd'" \
    "$work/inspect-csd.err"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
