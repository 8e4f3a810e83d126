#!/usr/bin/env bash
# End-to-end test of resuming after SIGKILL. The quick missing suite runs once without
# interruption into A; into B it is killed (runner and workers, the whole process group) at
# 5 seeded random moments and rerun after each kill, then run to the end. B must then hold the
# same results as A cell by cell (everything but time), with no temporary file, checkpoint or
# unreadable JSON left. A single training run killed after a checkpoint must resume from it
# and end with the same result as an uninterrupted run. Needs bin/euar and the embedded data.
# KILL_SEED picks the kill moments (default 1). Prints "N passed, M failed".
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh

kills=5
seed=${KILL_SEED:-1}

# Prints "yes" when two results agree on everything but time, else the first difference.
compare_results() {
    python3 - "$@" <<'PY'
import json, sys
def strip(r):
    r = dict(r)
    for key in ("time_s", "samples_per_s", "peak_rss_mb", "build"):
        r.pop(key, None)
    r["curve"] = [{k: v for k, v in e.items() if k != "ms"} for e in r["curve"]]
    return r
a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
print("yes" if not diff else "differs in " + ",".join(diff))
PY
}

a=$work/a
b=$work/b
start=$(date +%s.%N)
"$EUAR" suite suites/missing.json --quick --jobs 2 --results "$a" >"$work/a.log" 2>&1
check "uninterrupted suite exits 0" test $? -eq 0
duration=$(echo "$(date +%s.%N) - $start" | bc)

# Kill moments: uniform in [0.5, 0.5 + duration / 5] seconds after each start, so the five
# kills together reach about half way into the run.
delays=$(awk -v seed="$seed" -v n="$kills" -v d="$duration" \
    'BEGIN { srand(seed); for (i = 0; i < n; i++) printf "%.2f ", 0.5 + rand() * d / 5 }')
echo "  uninterrupted run ${duration%.*} s; kill after: $delays(seconds, KILL_SEED=$seed)"
survived=0
for delay in $delays; do
    setsid "$EUAR" suite suites/missing.json --quick --jobs 2 --results "$b" \
        --checkpoint-every 0 >>"$work/b.log" 2>&1 &
    pid=$!
    sleep "$delay"
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL -- "-$pid" 2>/dev/null
        survived=$((survived + 1))
    fi
    wait "$pid" 2>/dev/null
    done_count=$(find "$b" -maxdepth 1 -name '*.json' ! -name suite.json 2>/dev/null | wc -l)
    left=$(find "$b" -maxdepth 1 \( -name '*.tmp.*' -o -name '*.ckpt.h5' \) 2>/dev/null | wc -l)
    echo "  killed after $delay s: $done_count results, $left temporary files or checkpoints"
done
check "kills hit a running suite ($survived of $kills)" test "$survived" -ge 3
"$EUAR" suite suites/missing.json --quick --jobs 2 --results "$b" --checkpoint-every 0 \
    >"$work/b-final.log" 2>&1
check "final rerun exits 0" test $? -eq 0
check "final rerun finds no corrupt result" sh -c "! grep -q 'corrupt or incomplete' \
    '$work/b-final.log'"
resumed=$(cat "$b"/logs/*.log | grep -c '^resumed from checkpoint')
echo "  cells resumed from a checkpoint: $resumed"

count_a=$(find "$a" -maxdepth 1 -name '*.json' ! -name suite.json | wc -l)
count_b=$(find "$b" -maxdepth 1 -name '*.json' ! -name suite.json | wc -l)
check "both folders hold 40 results ($count_a and $count_b)" \
    test "$count_a" -eq 40 -a "$count_b" -eq 40
leftovers=$(find "$b" \( -name '*.tmp.*' -o -name '*.ckpt.h5' \) | wc -l)
check "no temporary file or checkpoint left ($leftovers)" test "$leftovers" -eq 0
unreadable=$(python3 - "$b" <<'PY'
import glob, json, os, sys
bad = 0
for path in glob.glob(os.path.join(sys.argv[1], "*.json")):
    try:
        json.load(open(path))
    except ValueError:
        bad += 1
print(bad)
PY
)
check "every JSON file of B parses ($unreadable do not)" test "$unreadable" -eq 0
different=0
for result in "$a"/*.json; do
    name=$(basename "$result")
    [ "$name" = suite.json ] && continue
    same=$(compare_results "$result" "$b/$name" 2>&1)
    if [ "$same" != yes ]; then
        echo "  $name: $same"
        different=$((different + 1))
    fi
done
check "every cell of B equals A but for time ($different differ)" test "$different" -eq 0

# One run killed after a checkpoint resumes from it and ends where an uninterrupted run ends.
args=(train --data data/synth-mosi.h5 --model euar --noise missing:keep=text,audio
    --set epochs=6 --set max_train=256)
"$EUAR" "${args[@]}" --out "$work/whole.json" >"$work/whole.log" 2>&1
check "uninterrupted run exits 0" test $? -eq 0
ckpt=$work/run.ckpt.h5
"$EUAR" "${args[@]}" --out "$work/resumed.json" --checkpoint "$ckpt" --checkpoint-every 0 \
    >"$work/first.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
    [ -e "$ckpt" ] && break
    sleep 0.05
done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
check "killed run left its checkpoint" test -e "$ckpt"
check "killed run wrote no result" test ! -e "$work/resumed.json"
"$EUAR" "${args[@]}" --out "$work/resumed.json" --checkpoint "$ckpt" --checkpoint-every 0 \
    >"$work/second.log" 2>&1
check "resumed run exits 0" test $? -eq 0
check "resumed run says so" grep -q '^resumed from checkpoint .* after epoch [1-5] of 6' \
    "$work/second.log"
check "checkpoint is deleted once the result is written" test ! -e "$ckpt"
same=$(compare_results "$work/whole.json" "$work/resumed.json")
check "resumed run equals the uninterrupted one ($same)" test "$same" = yes

echo "e2e resume: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
