#!/bin/sh
# have-fuzzer.sh CC: exit 0 if CC links a libFuzzer program with ASan+UBSan.
cc=${1:-clang}
command -v "$cc" >/dev/null 2>&1 || exit 1
dir=$(mktemp -d "${TMPDIR:-/tmp}/mbrld-fuzzcheck.XXXXXX") || exit 1
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$dir/t.c"
"$cc" -fsanitize=fuzzer,address,undefined "$dir/t.c" -o "$dir/t" >/dev/null 2>&1
rc=$?
rm -rf "$dir"
exit $rc
