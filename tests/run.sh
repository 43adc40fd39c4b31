#!/bin/sh
# run.sh: runs every test suite and prints one closing line
#   N passed, N failed
# Usage: tests/run.sh BUILD [SANITIZER_BUILD [TSAN_BUILD]]
# C suites (Check) are read from their "Checks: N, Failures: F, Errors: E"
# line; script suites (tests/*/test_*.sh) print their own "N passed, N failed"
# line. A suite that crashes or prints no summary counts as one failure.
# The C suites run again from SANITIZER_BUILD (ASan+UBSan) when given, with
# MBRLD_SANITIZER=1 so slow tests can shrink their workloads.
build=${1:-build}
san=$2
tsan=$3 # server suites (+ daemon) built with ThreadSanitizer
passed=0
failed=0
log_dir=$build/test-logs
mkdir -p "$log_dir"
: "${MBRLD_TEST_TIMEOUT:=900}"

count() { # name log rc
    line=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$2" | tail -n 1)
    if [ -n "$line" ]; then
        n=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
        f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
        e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
    else
        line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$2" | tail -n 1)
        if [ -n "$line" ]; then
            n=$(echo "$line" | sed -E 's/^([A-Za-z]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2/')
            f=$(echo "$line" | sed -E 's/^([A-Za-z]+: )?([0-9]+) passed, ([0-9]+) failed.*/\3/')
            n=$((n + f)); e=0
        else
            n=1; f=1; e=0
        fi
    fi
    if [ "$3" != 0 ] && [ $((f + e)) = 0 ]; then f=1; n=$((n + 1)); fi
    p=$((n - f - e)); bad=$((f + e))
    passed=$((passed + p)); failed=$((failed + bad))
    if [ "$bad" = 0 ] && [ "$p" = 0 ]; then
        printf '  skip  %-40s (no test applies in this build)\n' "$1"
    elif [ "$bad" = 0 ]; then
        printf '  ok    %-40s %4d checks\n' "$1" "$p"
    else
        printf '  FAIL  %-40s %4d passed, %d failed (log: %s)\n' "$1" "$p" "$bad" "$2"
        grep -E ':[EF]:|FAIL|ERROR|Assertion|runtime error|AddressSanitizer|LeakSanitizer|ThreadSanitizer' "$2" | head -n 20 | sed 's/^/        /'
    fi
}

run_c_suites() { # dir label
    for t in "$1"/tests/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")$2
        log=$log_dir/$name.log
        start=$(date +%s)
        MBRLD_BIN=$1/mbrld MBRLD_BUILD=$1 CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-600} \
            timeout "$MBRLD_TEST_TIMEOUT" "$t" >"$log" 2>&1
        rc=$?
        count "$name ($(( $(date +%s) - start ))s)" "$log" $rc
    done
}

echo "== C suites ($build)"
run_c_suites "$build" ""
# The numeric suites again on the AVX2 kernels (core/base/cpu.h: the
# binary picks AVX-512 at run time where the CPU has it; this is the path
# every other x86-64-v3 machine takes). test_dispatch compares the levels.
echo "== numeric suites with MBRLD_ISA=avx2 ($build)"
for name in test_cpu test_gemm test_ops test_rng test_ensemble test_propagate \
    test_planner_ensemble test_planner_alloc test_trainer test_learning test_bf16; do
    t=$build/tests/$name
    [ -x "$t" ] || continue
    log=$log_dir/$name.avx2.log
    start=$(date +%s)
    MBRLD_ISA=avx2 MBRLD_BIN=$build/mbrld MBRLD_BUILD=$build CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-600} \
        timeout "$MBRLD_TEST_TIMEOUT" "$t" >"$log" 2>&1
    rc=$?
    count "$name [avx2] ($(( $(date +%s) - start ))s)" "$log" $rc
done
echo "== script suites"
for t in tests/*/test_*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t")
    log=$log_dir/$name.log
    start=$(date +%s)
    MBRLD_BIN=$build/mbrld MBRLD_BUILD=$build timeout "$MBRLD_TEST_TIMEOUT" sh "$t" >"$log" 2>&1
    rc=$?
    count "$name ($(( $(date +%s) - start ))s)" "$log" $rc
done
if [ -n "$san" ]; then
    echo "== C suites under ASan+UBSan ($san)"
    MBRLD_SANITIZER=1 ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        run_c_suites "$san" " [asan]"
fi
if [ -n "$tsan" ]; then
    echo "== server suites under ThreadSanitizer ($tsan)"
    MBRLD_SANITIZER=1 TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0} run_c_suites "$tsan" " [tsan]"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
