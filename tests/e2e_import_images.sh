#!/usr/bin/env bash
# End-to-end test of `euar data import-nyud` and `euar data import-mvsa` as a user runs them.
# It writes small NYU Depth V2 and MVSA-Single folders (PNG files from Python's zlib), imports
# and inspects them, and runs a short suite with gaussian and salt-and-pepper noise on the
# imported files. Bad input must fail with a message, exit 1 and leave no file.
# Needs bin/euar and python3. Prints "N passed, M failed" and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh
e2e_require bin/euar

python3 - "$work" <<'PY'
import json, os, struct, sys, zlib

root = sys.argv[1]

def write_png(path, width, height, pixel):
    """Writes an 8-bit RGB PNG whose pixel (x, y) is pixel(x, y) = (r, g, b)."""
    rows = b"".join(b"\0" + bytes(v for x in range(width) for v in pixel(x, y))
                    for y in range(height))
    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                + chunk(b"IEND", b""))

# NYU Depth V2: 2 classes, 10 train and 4 test images each, RGB left and grey depth right.
for split, count in (("train", 10), ("test", 4)):
    for c, name in enumerate(("kitchen", "bedroom")):
        for i in range(count):
            write_png(f"{root}/nyu/{split}/{name}/{i:04d}.png", 32, 16,
                      lambda x, y: (60 + 120 * c, 40 + 8 * i, 90) if x < 16
                      else (50 + 100 * c + y,) * 3)

# MVSA-Single: 12 train, 3 dev and 3 test posts.
labels = ("positive", "neutral", "negative")
words = {"positive": "happy great", "neutral": "car table", "negative": "sad awful"}
os.makedirs(f"{root}/mvsa/data", exist_ok=True)
for split, count, first in (("train", 12, 100), ("dev", 3, 200), ("test", 3, 300)):
    with open(f"{root}/mvsa/{split}.jsonl", "w") as f:
        for i in range(count):
            post = first + i
            label = labels[i % 3]
            write_png(f"{root}/mvsa/data/{post}.png", 20, 20,
                      lambda x, y: (80 + 60 * (i % 3), 100, 120))
            text = f"RT @user: {words[label]} day #{post} http://t.co/x{post}"
            f.write(json.dumps({"id": str(post), "label": label, "text": text,
                                "img": f"data/{post}.png"}) + "\n")
PY

"$EUAR" data import-nyud "$work/nyu" --out "$work/nyu.h5" --size 8 --seed 3 \
    >"$work/nyu.log" 2>&1
check "import-nyud exits 0" test $? -eq 0
check "import-nyud prints the split sizes" \
    grep -q "28 samples (train 16, valid 4, test 8), 2 classes" "$work/nyu.log"
"$EUAR" data inspect "$work/nyu.h5" >"$work/nyu-inspect.txt" 2>&1
check "inspect accepts the NYU file" test $? -eq 0
check "NYU rgb is [28, 3, 8, 8]" grep -qE "rgb +image +\[28, 3, 8, 8\]" "$work/nyu-inspect.txt"
check "NYU depth is [28, 1, 8, 8]" grep -qE "depth +image +\[28, 1, 8, 8\]" "$work/nyu-inspect.txt"
check "NYU classes in sorted order" \
    sh -c "grep -E '^ +[01] ' '$work/nyu-inspect.txt' | awk '{print \$2}' | tr '\n' ' ' |
           grep -qx 'bedroom kitchen '"

"$EUAR" data import-nyud "$work/nyu" --out "$work/named.h5" --size 4 --name nyud-small \
    --valid-fraction 0.5 >"$work/named.log" 2>&1
check "import-nyud --name and --valid-fraction exit 0" test $? -eq 0
check "--valid-fraction 0.5 gives 10 valid images" \
    grep -q "28 samples (train 10, valid 10, test 8)" "$work/named.log"
"$EUAR" data inspect "$work/named.h5" >"$work/named-inspect.txt" 2>&1
check "--name sets the dataset name" grep -qE "^name +nyud-small$" "$work/named-inspect.txt"
check "--size 4 gives rgb [28, 3, 4, 4]" grep -qE "rgb +image +\[28, 3, 4, 4\]" \
    "$work/named-inspect.txt"

"$EUAR" data import-mvsa "$work/mvsa" --out "$work/mvsa.h5" --max-tokens 6 \
    >"$work/mvsa.log" 2>"$work/mvsa.err"
check "import-mvsa exits 0" test $? -eq 0
check "import-mvsa prints the split sizes" \
    grep -q "18 samples (train 12, valid 3, test 3), 3 classes" "$work/mvsa.log"
check "import-mvsa warns about truncated texts" grep -q "18 texts have more than 6 words" \
    "$work/mvsa.err"
"$EUAR" data inspect "$work/mvsa.h5" >"$work/mvsa-inspect.txt" 2>&1
check "inspect accepts the MVSA file" test $? -eq 0
check "MVSA text is tokens [18, 6]" grep -qE "text +tokens +\[18, 6\]" "$work/mvsa-inspect.txt"

# A suite on the imported files: gaussian noise without scale= takes the default scale of
# the dataset name (nyud-v2: 1, mvsa-single: 10).
cat >"$work/suite.json" <<EOF
{
  "format_version": 1,
  "name": "noise",
  "models": ["concat", "qmf", "euar"],
  "seeds": [1],
  "datasets": [
    {"label": "nyud-v2", "path": "$work/nyu.h5", "settings": {"batch": 8, "epochs": 2},
     "conditions": [{"label": "clean", "noise": "none"},
                    {"label": "g5", "noise": "gaussian:eps=5,p=0.5@rgb+gaussian:eps=5,p=0.5@depth"}]},
    {"label": "mvsa-single", "path": "$work/mvsa.h5", "settings": {"batch": 8, "epochs": 2},
     "conditions": [{"label": "clean", "noise": "none"},
                    {"label": "sp5", "noise": "saltpepper:eps=5,p=0.5,convention=10@image+blank:ratio=0.5,p=0.5@text"}]}
  ]
}
EOF
"$EUAR" suite "$work/suite.json" --jobs 2 --results "$work/results" >"$work/suite.log" 2>&1
check "suite on the imported files exits 0" test $? -eq 0
count=$(find "$work/results" -maxdepth 1 -name '*.json' ! -name suite.json | wc -l)
check "suite writes 6 results (got $count)" test "$count" -eq 6
"$EUAR" report "$work/results" >"$work/report.log" 2>&1
check "report of the imported sets exits 0" test $? -eq 0
check "report has a nyud-v2 table" grep -q "nyud-v2" "$work/results/report.md"

# expect_failure NAME OUT TEXT... -- COMMAND: the command must exit 1, print every TEXT on
# stderr and leave neither OUT nor a temporary file next to it.
expect_failure() {
    local name=$1 out=$2
    shift 2
    local texts=()
    while [ "$1" != "--" ]; do
        texts+=("$1")
        shift
    done
    shift
    "$@" >"$work/fail.out" 2>"$work/fail.err"
    local status=$?
    check "$name: exit 1 (got $status)" test "$status" -eq 1
    for text in "${texts[@]}"; do
        check "$name: message has '$text'" grep -qF -- "$text" "$work/fail.err"
    done
    check "$name: no output file" test ! -e "$out"
    check "$name: no temporary file" sh -c "! ls '$out'.tmp.* 2>/dev/null | grep -q ."
}

cp -r "$work/nyu" "$work/nyu-odd"
printf 'not a png' >"$work/nyu-odd/train/kitchen/0003.png"
expect_failure "corrupt PNG" "$work/odd.h5" "nyu-odd/train/kitchen/0003.png" \
    "not a readable image" -- "$EUAR" data import-nyud "$work/nyu-odd" --out "$work/odd.h5"

cp -r "$work/mvsa" "$work/mvsa-bad"
sed -i '3s/.*/{"id": "102", "label": /' "$work/mvsa-bad/train.jsonl"
expect_failure "invalid JSON line" "$work/bad.h5" "mvsa-bad/train.jsonl line 3" \
    "invalid JSON" -- "$EUAR" data import-mvsa "$work/mvsa-bad" --out "$work/bad.h5"

expect_failure "unknown option" "$work/opt.h5" "unknown option '--valid-fraction'" -- \
    "$EUAR" data import-mvsa "$work/mvsa" --out "$work/opt.h5" --valid-fraction 0.1
expect_failure "size out of range" "$work/size.h5" "--size: '0'" -- \
    "$EUAR" data import-nyud "$work/nyu" --out "$work/size.h5" --size 0

# Repeated options, names the format does not allow and --out paths that cannot be written
# fail before any input is read.
expect_failure "option given twice" "$work/twice.h5" "--size given twice" -- \
    "$EUAR" data import-nyud "$work/nyu" --out "$work/twice.h5" --size 8 --size 4
expect_failure "empty --name" "$work/noname.h5" "--name: '' has 0 bytes" -- \
    "$EUAR" data import-mvsa "$work/mvsa" --out "$work/noname.h5" --name ""
expect_failure "--name with a slash" "$work/slash.h5" "--name: 'mvsa/single' contains '/'" -- \
    "$EUAR" data import-mvsa "$work/mvsa" --out "$work/slash.h5" --name mvsa/single
expect_failure "--out in a missing folder" "$work/none/x.h5" \
    "--out: folder $work/none does not exist; create it first" -- \
    "$EUAR" data import-nyud "$work/nyu" --out "$work/none/x.h5"
expect_failure "--out is a folder" "$work/nyu/x" "--out: $work/nyu is a folder" -- \
    "$EUAR" data import-mvsa "$work/mvsa" --out "$work/nyu"

# macOS archives: __MACOSX folders and .DS_Store files are skipped, a val/ folder is noted,
# and a class without test images gets a warning. A UTF-8 class name keeps inspect's class
# table aligned.
cp -r "$work/nyu" "$work/nyu-mac"
mkdir -p "$work/nyu-mac/__MACOSX/train/kitchen" "$work/nyu-mac/train/__MACOSX/kitchen" \
    "$work/nyu-mac/val/kitchen" "$work/nyu-mac/train/café"
printf 'resource fork' >"$work/nyu-mac/__MACOSX/train/kitchen/._0000.png"
printf 'resource fork' >"$work/nyu-mac/train/__MACOSX/kitchen/._0000.png"
printf 'finder' >"$work/nyu-mac/train/kitchen/.DS_Store"
cp "$work/nyu/train/kitchen/0000.png" "$work/nyu-mac/val/kitchen/"
cp "$work/nyu/train/kitchen/"000[0-3].png "$work/nyu-mac/train/café/"
"$EUAR" data import-nyud "$work/nyu-mac" --out "$work/mac.h5" --size 4 >"$work/mac.log" \
    2>"$work/mac.err"
check "import-nyud skips __MACOSX and .DS_Store" test $? -eq 0
check "import-nyud finds 3 classes" grep -q "32 samples .*, 3 classes" "$work/mac.log"
check "import-nyud notes the ignored val/ folder" \
    grep -q "ignored 1 folder besides train/ and test/ (val)" "$work/mac.err"
check "import-nyud warns about a class without test images" \
    grep -q "1 class of train/ has no test images (the first is 'café')" "$work/mac.err"
"$EUAR" data inspect "$work/mac.h5" >"$work/mac-inspect.txt" 2>&1
# Every row of the class table has the same width in characters.
check "inspect aligns a UTF-8 class name" python3 -c '
import re, sys
rows = [line.rstrip("\n") for line in open(sys.argv[1], encoding="utf-8")
        if re.match(r" +[0-2] ", line)]
sys.exit(len(rows) != 3 or len({len(row) for row in rows}) != 1)' "$work/mac-inspect.txt"

# MVSA: an absolute image path, an empty text (unavailable), a Latin-1 byte, and a
# --min-count that leaves no word.
cp -r "$work/mvsa" "$work/mvsa-odd"
python3 - "$work/mvsa-odd" <<'PY'
import json, sys
root = sys.argv[1]
with open(f"{root}/dev.jsonl", "wb") as f:
    f.write(json.dumps({"id": "200", "label": "positive", "text": "",
                        "img": f"{root}/data/200.png"}).encode() + b"\n")
    f.write(b'{"id": "201", "label": "neutral", "text": "caf\xe9 car", "img": "data/201.png"}\n')
PY
"$EUAR" data import-mvsa "$work/mvsa-odd" --out "$work/odd-mvsa.h5" --min-count 100 \
    >"$work/odd-mvsa.log" 2>"$work/odd-mvsa.err"
check "import-mvsa reads an absolute img path" test $? -eq 0
check "import-mvsa counts the empty text as unavailable" \
    grep -q "1 empty text (stored as unavailable)" "$work/odd-mvsa.log"
check "import-mvsa warns about invalid UTF-8" \
    grep -q "1 text is not valid UTF-8 (the first in sample '201')" "$work/odd-mvsa.err"
check "import-mvsa warns about an empty vocabulary" \
    grep -q "min-count 100 leaves no train word in the vocabulary" "$work/odd-mvsa.err"
check "import-mvsa says 0 train words" grep -q "and 0 train words with count" \
    "$work/odd-mvsa.log"
"$EUAR" data inspect "$work/odd-mvsa.h5" >"$work/odd-inspect.txt" 2>&1
check "inspect counts 1 unavailable text" \
    grep -qE "text +tokens .*available 16/17" "$work/odd-inspect.txt"

# Counts of one take the singular: one train word, one unknown word, one empty text.
mkdir -p "$work/mvsa-one"
cp -r "$work/mvsa/data" "$work/mvsa-one/"
printf '{"id": "1", "label": "positive", "text": "good", "img": "data/100.png"}\n' \
    >"$work/mvsa-one/train.jsonl"
printf '{"id": "2", "label": "neutral", "text": "", "img": "data/101.png"}\n' \
    >"$work/mvsa-one/dev.jsonl"
printf '{"id": "3", "label": "negative", "text": "bad", "img": "data/102.png"}\n' \
    >"$work/mvsa-one/test.jsonl"
"$EUAR" data import-mvsa "$work/mvsa-one" --out "$work/one.h5" >"$work/one.log" 2>&1
check "import-mvsa of one word per split exits 0" test $? -eq 0
check "import-mvsa says '1 train word with'" grep -q "and 1 train word with count" \
    "$work/one.log"
check "import-mvsa says '1 word mapped'" grep -q "; 1 word mapped to the unknown id 2" \
    "$work/one.log"
check "import-mvsa says '1 empty text'" grep -q "; 1 empty text (stored as unavailable)" \
    "$work/one.log"

echo "e2e import: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
