#!/bin/sh
# test_fuzz.sh: every libFuzzer target (tests/fuzz/fuzz_*.c, built by
# `make fuzz-build` into $MBRLD_BUILD/fuzz) for a few seconds each
# (MBRLD_FUZZ_SECONDS, default 6) from the checked-in seed corpus
# tests/fuzz/corpus/<target> (read only: new inputs go to a temporary
# directory), under ASan+UBSan; then every saved crash of
# tests/fuzz/regress/<target>/ once. Skipped, with a line saying why, where
# clang's fuzzer runtime is missing. Prints "N passed, N failed" last.
build=${MBRLD_BUILD:-build}
secs=${MBRLD_FUZZ_SECONDS:-6}
pass=0
fail=0
if ! sh tests/fuzz/have-fuzzer.sh "${FUZZ_CC:-clang}"; then
    echo "skip  fuzzing: ${FUZZ_CC:-clang} cannot link -fsanitize=fuzzer here (Debian: apt-get install clang libclang-rt-dev, or make deps)"
    echo "0 passed, 0 failed"
    exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbrld-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for src in tests/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    name=${t#fuzz_}
    bin=$build/fuzz/$t
    if [ ! -x "$bin" ]; then
        echo "FAIL  $t: $bin not built (make fuzz-build)"
        fail=$((fail + 1))
        continue
    fi
    mkdir -p "$tmp/$name"
    log=$tmp/$name.log
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$tmp/$name-" "$tmp/$name" "tests/fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | sed -E 's/.*cov: ([0-9]+) ft: ([0-9]+).*/\1 edges, \2 features/')
    if [ "$rc" = 0 ]; then
        echo "ok    $t: ${runs:-?} runs in ${secs} s, ${cov:-?}"
        pass=$((pass + 1))
    else
        echo "FAIL  $t (exit $rc): crash inputs in $tmp are removed at exit; rerun by hand, see tests/fuzz/README.md"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 8 | sed 's/^/      /'
        for a in "$tmp/$name"-*; do [ -f "$a" ] && echo "      input (base64): $(head -c 600 "$a" | base64 -w0)"; done
        fail=$((fail + 1))
    fi
    if [ -d "tests/fuzz/regress/$name" ] && [ -n "$(ls "tests/fuzz/regress/$name")" ]; then
        if "$bin" tests/fuzz/regress/"$name"/* >"$tmp/$name.regress.log" 2>&1; then
            echo "ok    $t: $(ls "tests/fuzz/regress/$name" | wc -l) saved crash inputs pass"
            pass=$((pass + 1))
        else
            echo "FAIL  $t: a saved crash input of tests/fuzz/regress/$name fails again"
            grep -E 'ERROR|SUMMARY|runtime error|Running' "$tmp/$name.regress.log" | head -n 8 | sed 's/^/      /'
            fail=$((fail + 1))
        fi
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
