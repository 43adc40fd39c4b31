#!/bin/sh
# test_planners_pendulum.sh: issue 14's planners learn Pendulum-v1 through a
# real daemon: `mbrld-bench planners` (bench/bench_planners.c) starts mbrld
# in-process on loopback, learns the pendulum from scratch over 9 episodes
# (the first random, Gymnasium's random starts from seed 1) with
#   - "actions": {"discrete": 5} (torques -2..2) and "method": "mcts",
#   - "method": "ilqr" on declared reward terms,
# and the mean return of the last 3 episodes must beat -400 for each (a
# random policy scores about -1200). Seeds 1-3 all reach it (docs/RESULTS.md).
# About 30 s + 60 s on 2 busy cores. Prints "N passed, N failed" last.
build=${MBRLD_BUILD:-build}
bench=$build/mbrld-bench
pass=0
fail=0
if [ ! -x "$bench" ]; then
    echo "SKIPPED: needs $bench (make all)"
    echo "0 passed, 0 failed"
    exit 0
fi
out=$(mktemp "${TMPDIR:-/tmp}/mbrl-planners.XXXXXX")
trap 'rm -f "$out"' EXIT
"$bench" planners --seed 1 >"$out" 2>&1
rc=$?
cat "$out" | grep -v '^  ' || true
for m in mcts ilqr; do
    line=$(grep "^{\"bench\": \"planners\"" "$out" | grep "\"method\": \"$m\"")
    if [ $rc = 0 ] && printf '%s' "$line" | grep -q '"reached": true'; then
        echo "ok    $m: mean of the last 3 episodes > -400 ($(printf '%s' "$line" | sed 's/.*"mean_last3": \([^,]*\).*/\1/'))"
        pass=$((pass + 1))
    else
        echo "FAIL  $m: $line (exit $rc)"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
