#!/usr/bin/env bash
# Runs the quick convergence suite (3 cells) and its report under valgrind memcheck, the suite
# runner and every worker process alike, and fails on any memory error or leak. Slow (several
# minutes on 2 cores), so it is not part of `make test`. Needs bin/euar and
# data/synth-mosi.h5. Prints one summary line per process and a total.
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh

logs=$work/valgrind
mkdir -p "$logs"
# Leaks of every kind count as errors: definite, indirect and possible. gnuplot, which the
# report runs for its plots, is not this project's code and is left untraced.
memcheck=(valgrind --tool=memcheck --trace-children=yes --trace-children-skip='*/gnuplot,*/sh'
    --leak-check=full
    --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible
    --error-exitcode=99 --log-file="$logs/%p.log")

start=$(date +%s)
"${memcheck[@]}" "$EUAR" suite suites/convergence.json --quick --jobs 2 \
    --results "$work/results" >"$work/suite.log" 2>&1
check "suite under memcheck exits 0" test $? -eq 0
"${memcheck[@]}" "$EUAR" report "$work/results" >"$work/report.log" 2>&1
check "report under memcheck exits 0" test $? -eq 0
seconds=$(($(date +%s) - start))

processes=0
errors=0
for log in "$logs"/*.log; do
    count=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -n 1)
    command=$(sed -n 's/^==[0-9]*== Command: //p' "$log" | cut -c1-60)
    # A child forked to run gnuplot execs it untraced and leaves a log without a summary.
    if [ -z "$count" ]; then
        echo "  untraced child of: $command"
        continue
    fi
    processes=$((processes + 1))
    echo "  $count errors  $command"
    errors=$((errors + count))
done
check "memcheck summaries of $processes processes" test "$processes" -ge 5
check "no memcheck error in any process (got $errors)" test "$errors" -eq 0
grep -h "definitely lost\|in use at exit" "$logs"/*.log | sed 's/^==[0-9]*== */  /' | sort | uniq -c
echo "valgrind: $processes processes in $seconds s"
echo "valgrind: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
