#!/bin/sh
# test_error_codes.sh: every error code the daemon can answer (the table in
# server/errors.c) is in docs/openapi.json's Error.code enum, so clients
# generated from the document accept every error they can get.
# Prints "N passed, N failed" last.
cd "$(dirname "$0")/../.." || exit 1
python3 - <<'PY'
import json, re, sys
codes = sorted(set(re.findall(r'\{\s*[A-Z_]+,\s*\d{3},\s*"([a-z_]+)"\s*\}', open("server/errors.c").read())))
enum = json.load(open("docs/openapi.json"))["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
passed = failed = 0
if len(codes) < 15:
    print("FAIL  server/errors.c: only %d codes found (the table's layout changed?)" % len(codes)); failed += 1
for c in codes:
    if c in enum:
        passed += 1
    else:
        print("FAIL  %s (server/errors.c) is not in docs/openapi.json's Error.code enum" % c); failed += 1
print("ok    %d error codes of server/errors.c are in the Error.code enum" % passed)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
