#!/usr/bin/env bash
# End-to-end test of `euar data import-pickle`: small MMSA and MAG-BERT/MIB pickles written by
# tests/pickle_fixtures.py are imported, inspected and trained on, and every kind of bad input
# must fail with its message and leave no output file. Needs bin/euar and Debian's
# python3-numpy and python3-h5py. Prints "N passed, M failed" and exits non-zero on any
# failure.
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh
e2e_require bin/euar

PY=/usr/bin/python3
fixtures=$work/fixtures
mkdir -p "$fixtures"
"$PY" tests/pickle_fixtures.py "$fixtures"
check "fixture pickles written" test -s "$fixtures/mmsa.pkl"

# Prints the line of `euar data inspect` that starts with $2 for file $1.
inspect_line() {
    "$EUAR" data inspect "$1" --nonfinite zero 2>/dev/null | grep "^$2"
}

# --- MMSA ---------------------------------------------------------------------------------
"$EUAR" data import-pickle --format mmsa "$fixtures/mmsa.pkl" --out "$work/mmsa.h5" \
    >"$work/mmsa.out" 2>"$work/mmsa.err"
check "mmsa import exits 0" test $? -eq 0
check "mmsa output written" test -s "$work/mmsa.h5"
check "no temporary file left" sh -c "! ls '$work'/mmsa.h5.tmp.* 2>/dev/null"
check "mmsa warns about 3 -inf audio values" \
    grep -q "audio: 3 non-finite values (-inf 3) in 3 samples, the first in sample 'a_b-c\$_\$1'" \
    "$work/mmsa.err"
check "mmsa warns about the clamped train length" \
    grep -q "train: audio_lengths: 1 length beyond the padded length 4 clamped" "$work/mmsa.err"
check "mmsa warns about the clamped valid length" \
    grep -q "valid: audio_lengths: 1 length beyond the padded length 4 clamped" "$work/mmsa.err"
check "mmsa warns about 2 labels beyond 3" \
    grep -q "2 labels outside \[-3, 3\] (largest magnitude 3.5" "$work/mmsa.err"

"$EUAR" data inspect "$work/mmsa.h5" >/dev/null 2>"$work/inspect.err"
check "inspect rejects the kept -inf by default" test $? -eq 1
check "inspect names the non-finite audio" \
    grep -q "/modalities/audio/data: 3 non-finite values" "$work/inspect.err"
line=$(inspect_line "$work/mmsa.h5" samples)
check "mmsa splits 4/2/3 ($line)" test "$line" = "samples   9 (train 4, valid 2, test 3)"
line=$(inspect_line "$work/mmsa.h5" "modality  text")
check "mmsa text lengths from the mask ($line)" \
    test "$line" = "modality  text       features [9, 5, 6]  lengths 0..5 (mean 3.0)  available 8/9"
line=$(inspect_line "$work/mmsa.h5" "modality  audio")
check "mmsa audio lengths clamped ($line)" \
    test "$line" = "modality  audio      features [9, 4, 3]  lengths 0..4 (mean 2.9)  available 8/9"
line=$(inspect_line "$work/mmsa.h5" "modality  vision")
check "mmsa vision lengths ($line)" \
    test "$line" = "modality  vision     features [9, 3, 2]  lengths 0..3 (mean 2.2)  available 8/9"
line=$(inspect_line "$work/mmsa.h5" "labels    train")
check "mmsa train labels clipped to 3 ($line)" grep -q "min -3.00  max 3.00" <<<"$line"

# Ids, source names and the exact arrays, read back with h5py.
layout=$("$PY" -B - "$work/mmsa.h5" <<'PY'
import sys
import h5py
import numpy as np
sys.path.insert(0, "tests")
import pickle_fixtures as fx
bad = []
with h5py.File(sys.argv[1], "r") as f:
    ids = [s.decode() for s in f["samples/id"][:]]
    if ids != fx.MMSA_IDS:
        bad.append(f"ids {ids}")
    if list(f["samples/split"][:]) != [0] * 4 + [1] * 2 + [2] * 3:
        bad.append("split")
    if list(f.attrs["source_splits"]) != ["train", "valid", "test"]:
        bad.append("source_splits")
    if not np.allclose(f["samples/source_label"][:], np.float32(fx.MMSA_LABELS)):
        bad.append("source_label")
    if not np.allclose(f["labels"][:], np.clip(fx.MMSA_LABELS, -3, 3)):
        bad.append("labels")
    audio = f["modalities/audio/data"][:]
    if np.isneginf(audio).sum() != 3 or not np.isneginf(audio[1, 0, 0]):
        bad.append("audio -inf")
    if list(f["modalities/audio/lengths"][:]) != [min(x, 4) for x in fx.MMSA_AUDIO_LENGTHS]:
        bad.append("audio lengths")
    if list(f["modalities/vision/available"][:]) != [int(x > 0) for x in fx.MMSA_VISION_LENGTHS]:
        bad.append("vision available")
    if f["source/text_bert"].shape != (9, 3, 5) or f["source/text_bert"][2, 0, 0] != 101:
        bad.append("text_bert")
print("ok" if not bad else "bad: " + ", ".join(bad))
PY
)
check "mmsa ids, splits, labels, arrays ($layout)" test "$layout" = ok

"$EUAR" data import-pickle --format mmsa "$fixtures/mmsa.pkl" --out "$work/again.h5" \
    --name mmsa >/dev/null 2>&1
check "same pickle gives the same bytes" cmp -s "$work/mmsa.h5" "$work/again.h5"

"$EUAR" data import-pickle --format mmsa "$fixtures/mmsa.pkl" --out "$work/zero.h5" \
    --nonfinite zero >/dev/null 2>"$work/zero.err"
check "--nonfinite zero exits 0" test $? -eq 0
check "--nonfinite zero says so" grep -q "replaced with 0 (--nonfinite zero)" "$work/zero.err"
check "--nonfinite zero output loads without the option" \
    sh -c "'$EUAR' data inspect '$work/zero.h5' >/dev/null 2>&1"

"$EUAR" train --data "$work/mmsa.h5" --model euar --nonfinite zero --set epochs=2 \
    --out "$work/mmsa-run.json" >"$work/train.log" 2>&1
check "euar trains on the mmsa import" test $? -eq 0
check "the mmsa run wrote its result" test -s "$work/mmsa-run.json"

# --- MAG-BERT/MIB -------------------------------------------------------------------------
"$EUAR" data import-pickle --format mib "$fixtures/mib.pkl" --out "$work/mib.h5" \
    >"$work/mib.out" 2>"$work/mib.err"
check "mib import exits 0" test $? -eq 0
check "mib summary names dev as the source of valid" \
    grep -q "train 3, valid 2 from 'dev', test 2" "$work/mib.out"
check "mib warns about 4 unknown words" \
    grep -q "4 words of dev and test not in the training vocabulary" "$work/mib.err"
check "mib warns about one -inf acoustic value" \
    grep -q "audio: 1 non-finite value (-inf 1) in 1 sample, the first in sample 't-1_a'" \
    "$work/mib.err"
line=$(inspect_line "$work/mib.h5" "modality  text")
check "mib words become tokens ($line)" \
    test "$line" = "modality  text       tokens   [7, 4] vocab 11  lengths 0..4 (mean 2.4)  available 6/7"
line=$(inspect_line "$work/mib.h5" "modality  vision")
check "mib visual becomes vision ($line)" \
    test "$line" = "modality  vision     features [7, 4, 5]  lengths 0..4 (mean 2.4)  available 6/7"

layout=$("$PY" -B - "$work/mib.h5" <<'PY'
import sys
import h5py
import numpy as np
sys.path.insert(0, "tests")
import pickle_fixtures as fx
bad = []
with h5py.File(sys.argv[1], "r") as f:
    if [s.decode() for s in f["samples/id"][:]] != fx.MIB_SEGMENTS:
        bad.append("ids")
    if list(f.attrs["source_splits"]) != ["train", "dev", "test"]:
        bad.append("source_splits")
    vocabulary = [s.decode() for s in f["modalities/text/vocabulary"][:]]
    if vocabulary[:4] != ["<pad>", "<blank>", "<unk>", "the"] or len(vocabulary) != 11:
        bad.append(f"vocabulary {vocabulary}")
    tokens = f["modalities/text/data"][:].tolist()
    if tokens[0] != [3, 4, 5, 6] or tokens[3] != [6, 2, 2, 0] or tokens[4] != [0, 0, 0, 0]:
        bad.append(f"tokens {tokens}")
    if list(f["modalities/audio/available"][:]) != [1, 1, 1, 1, 0, 1, 1]:
        bad.append("available")
    if f["modalities/vision/data"][6, 0, 3] != np.float32(603.125):
        bad.append("vision value")
print("ok" if not bad else "bad: " + ", ".join(bad))
PY
)
check "mib ids, vocabulary, tokens, arrays ($layout)" test "$layout" = ok

"$EUAR" train --data "$work/mib.h5" --model euar --nonfinite zero --set epochs=2 \
    --out "$work/mib-run.json" >"$work/train-mib.log" 2>&1
check "euar trains on the mib import" test $? -eq 0

"$EUAR" data import-pickle --format mib "$fixtures/mib.pkl" --out "$work/short.h5" \
    --max-steps 2 >/dev/null 2>"$work/short.err"
check "--max-steps 2 truncates 4 samples" \
    grep -q "4 samples longer than --max-steps 2 words truncated" "$work/short.err"

# --- Bad input: the message, exit status 1 and no output file ----------------------------
# expect_error NAME FORMAT PICKLE PATTERN: the import must fail with PATTERN on stderr.
expect_error() {
    local name=$1 format=$2 pickle=$3 pattern=$4
    local out=$work/bad-$name.h5
    "$EUAR" data import-pickle --format "$format" "$fixtures/$pickle" --out "$out" \
        >/dev/null 2>"$work/bad-$name.err"
    local status=$?
    check "$name exits 1" test "$status" -eq 1
    check "$name message" grep -qF -- "$pattern" "$work/bad-$name.err"
    check "$name writes no file" sh -c "! ls '$out'* 2>/dev/null"
}
expect_error not-pickle mmsa not_pickle.pkl "not_pickle.pkl: not a pickle"
expect_error truncated mmsa truncated.pkl "truncated.pkl: the pickle is truncated"
expect_error missing-split mmsa missing_split.pkl "split 'test' not found (keys: ['train', 'valid'])"
expect_error missing-key mmsa missing_key.pkl "valid: audio: key not found"
expect_error mismatch mmsa mismatch.pkl "train: audio: 3 samples but regression_labels has 4"
expect_error width mmsa width.pkl "test: vision: features are 3 wide but 2 in train"
expect_error duplicate-ids mmsa dup_ids.pkl \
    "sample id 'a_b-c\$_\$1' appears twice, at train[1] and test[1]"
expect_error negative-length mmsa negative_length.pkl \
    "test: audio_lengths: length -1 of sample 'test_b-1' is negative"
expect_error nan-label mmsa nan_label.pkl \
    "labels must be finite, so fix or drop the sample (1 such label)"
expect_error code-in-pickle mmsa evil.pkl "the pickle refers to 'os.system'"
check "the pickle's code did not run" test ! -e "$fixtures/evil-ran"
expect_error mib-width mib mib_width.pkl "visual is 6 wide but 5 in train[0]"
expect_error mib-mismatch mib mib_mismatch.pkl "4 words but acoustic has 3 steps"
expect_error mib-duplicate-ids mib mib_dup_ids.pkl \
    "sample id 'vid-A_b[1]' appears twice, at train[1] and test[1]"
expect_error wrong-format mib mmsa.pkl "it looks like an MMSA pickle, pass --format mmsa"
check "a failed import leaves no warnings" sh -c "! grep -q warning '$work/bad-missing-key.err'"

"$EUAR" data import-pickle --format csv "$fixtures/mmsa.pkl" --out "$work/x.h5" 2>"$work/fmt.err"
check "unknown --format exits 1" test $? -eq 1
check "unknown --format is named" grep -q "format: 'csv' is invalid" "$work/fmt.err"
"$EUAR" data import-pickle --format mmsa "$fixtures/none.pkl" --out "$work/x.h5" 2>"$work/nf.err"
check "missing input exits 1" test $? -eq 1
check "missing input is named" grep -q "none.pkl: not found" "$work/nf.err"

# An interpreter without numpy and h5py: python3 -S skips Debian's dist-packages.
printf '#!/bin/sh\nexec /usr/bin/python3 -S "$@"\n' >"$work/bare-python"
chmod +x "$work/bare-python"
EUAR_PYTHON=$work/bare-python "$EUAR" data import-pickle --format mmsa "$fixtures/mmsa.pkl" \
    --out "$work/x.h5" 2>"$work/bare.err"
check "python without numpy exits 1" test $? -eq 1
check "python without numpy names the packages" grep -q "python3-numpy and python3-h5py" \
    "$work/bare.err"
check "python without numpy writes no file" test ! -e "$work/x.h5"

# Bad option values fail in bin/euar with one "euar: error:" line and exit 1, before Python.
# fail_cli NAME MESSAGE ARGS...: import-pickle with ARGS must exit 1, print one line with
# MESSAGE and no argparse usage, and write no file.
fail_cli() {
    local name=$1 message=$2
    shift 2
    rm -f "$work/y.h5"
    "$EUAR" data import-pickle "$@" >"$work/cli.out" 2>"$work/cli.err"
    local status=$?
    check "$name: exit 1 (got $status)" test "$status" -eq 1
    check "$name: message" grep -qF -- "euar: error: $message" "$work/cli.err"
    check "$name: one line" test "$(wc -l <"$work/cli.err")" -eq 1
    check "$name: no output file" test ! -e "$work/y.h5"
}
P=(--format mmsa "$fixtures/mmsa.pkl")
fail_cli "--nonfinite Zero" "--nonfinite: 'Zero' is invalid; use 'keep' or 'zero'" \
    "${P[@]}" --out "$work/y.h5" --nonfinite Zero
fail_cli "--max-steps x" "--max-steps: 'x' is invalid" "${P[@]}" --out "$work/y.h5" \
    --max-steps x
fail_cli "empty --name" "--name: '' has 0 bytes" "${P[@]}" --out "$work/y.h5" --name ""
fail_cli "--name with a slash" "--name: 'a/b' contains '/'" "${P[@]}" --out "$work/y.h5" \
    --name a/b
fail_cli "--out given twice" "--out given twice" "${P[@]}" --out "$work/y.h5" \
    --out "$work/z.h5"
fail_cli "--out in a missing folder" "--out: folder $work/none does not exist; create it first" \
    "${P[@]}" --out "$work/none/y.h5"
fail_cli "--out is a folder" "--out: $work is a folder" "${P[@]}" --out "$work"

# The script run directly: its usage errors also give one line and exit 1.
"$PY" datasets/import_pickle.py --format mmsa "$fixtures/mmsa.pkl" --out "$work/y.h5" \
    --nonfinite Zero >/dev/null 2>"$work/direct.err"
check "script: bad --nonfinite exits 1" test $? -eq 1
check "script: bad --nonfinite in one line" test "$(wc -l <"$work/direct.err")" -eq 1
check "script: bad --nonfinite names the choices" \
    grep -q "^euar: error: argument --nonfinite: invalid choice: 'Zero'" "$work/direct.err"
"$PY" datasets/import_pickle.py --format mmsa "$fixtures/mmsa.pkl" --out "$work/none/y.h5" \
    >/dev/null 2>"$work/direct.err"
check "script: missing --out folder" \
    grep -qx "euar: error: --out: folder $work/none does not exist; create it first" \
    "$work/direct.err"

# EUAR_PYTHON without a slash is looked up in PATH.
EUAR_PYTHON=python3 PATH="/usr/bin:$PATH" "$EUAR" data import-pickle "${P[@]}" \
    --out "$work/path.h5" >/dev/null 2>"$work/path.err"
check "EUAR_PYTHON=python3 is found in PATH" test $? -eq 0
EUAR_PYTHON=no-such-python "$EUAR" data import-pickle "${P[@]}" --out "$work/y.h5" \
    2>"$work/path.err"
check "EUAR_PYTHON not in PATH exits 1" test $? -eq 1
check "EUAR_PYTHON not in PATH asks for a full path" \
    grep -q "EUAR_PYTHON=no-such-python: not found in PATH; set EUAR_PYTHON to the full path" \
    "$work/path.err"

# inspect recognises a pickle and points to import-pickle.
"$EUAR" data inspect "$fixtures/mmsa.pkl" >/dev/null 2>"$work/inspect-pkl.err"
check "inspect of a pickle exits 1" test $? -eq 1
check "inspect of a pickle points to import-pickle" \
    grep -q "mmsa.pkl: a Python pickle (protocol [2-5]), not a euar-bench dataset file; convert it with 'euar data import-pickle" \
    "$work/inspect-pkl.err"

echo "e2e import-pickle: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
