#!/bin/sh
# test_python.sh: runs tests/clients/test_python.py (the Python client
# against a real mbrld and a fake server; it prints "N passed, N failed").
# Without python3 (3.9 or newer) it says so and counts nothing.
py=${PYTHON:-python3}
if ! command -v "$py" >/dev/null 2>&1 || ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 9))'; then
    echo "skip: no python3 >= 3.9 here (the Python client needs 3.9+)"
    echo "0 passed, 0 failed"
    exit 0
fi
exec "$py" tests/clients/test_python.py
