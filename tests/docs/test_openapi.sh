#!/bin/sh
# test_openapi.sh: docs/openapi.json passes Redocly's lint (recommended
# rules, docs/redocly.yaml: operationIds for client generators, a 4xx per
# operation, ...) with no error and no warning. Skipped, saying why, where
# node/npm or the npm registry cannot be reached (tools/openapi-lint.sh).
# Prints "N passed, N failed" last (tests/run.sh reads it).
# Not for: routes missing from the document (tests/server/test_routes.c).
sh tools/openapi-lint.sh
rc=$?
case $rc in
0) echo "1 passed, 0 failed" ;;
3) echo "skip: the OpenAPI lint did not run (above)"; echo "0 passed, 0 failed" ;;
*) echo "FAIL  docs/openapi.json has lint problems (above)"; echo "0 passed, 1 failed"; exit 1 ;;
esac
