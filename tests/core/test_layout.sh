#!/bin/sh
# test_layout.sh: the include rules between core's rooms and the server and
# clients (tools/check-layout.sh prints "N passed, N failed").
exec sh "$(dirname "$0")/../../tools/check-layout.sh"
