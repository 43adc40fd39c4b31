# daemon-lib.sh: the throw-away daemon of the tools that drive mbrl-sim
# through mbrld (run-demo.sh, bench-learning.sh); sourced, runs nothing
# by itself.
# daemon_start WHO BUILD PREFIX: a temporary directory $tmp
#   (PREFIX.XXXXXX), BUILD/mbrld on a free loopback port with its data
#   there, $pid, and $url once /healthz answers. A daemon that does not
#   start exits the script (1) with "WHO: ..." and its log on stderr. At
#   exit the daemon is stopped (daemon_stop) and $tmp removed; INT and TERM
#   exit with status 130.
# daemon_stop: SIGTERM, then waits for it; says so on stderr when mbrld
#   exits with a non-zero status.
# Not for: the test suites (tests/clients/daemon.sh).

daemon_start() {
    daemon_who=$1
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/$3.XXXXXX") || exit 1
    pid=
    trap daemon__finish EXIT
    trap 'exit 130' INT TERM
    "$2/mbrld" --listen 127.0.0.1:0 --port-file "$tmp/port" --data-dir "$tmp/data" \
        --log-level warn 2>"$tmp/mbrld.log" &
    pid=$!
    i=0
    while [ ! -s "$tmp/port" ]; do
        i=$((i + 1))
        if [ $i -gt 200 ] || ! kill -0 "$pid" 2>/dev/null; then
            echo "$daemon_who: mbrld did not start; its log:" >&2
            cat "$tmp/mbrld.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    url=http://127.0.0.1:$(cat "$tmp/port")
    i=0
    until curl -fsS "$url/healthz" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -gt 100 ] && { echo "$daemon_who: $url/healthz does not answer" >&2; exit 1; }
        sleep 0.1
    done
}

daemon_stop() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        daemon_rc=$?
        [ "$daemon_rc" != 0 ] && echo "$daemon_who: mbrld exited with status $daemon_rc (log: $tmp/mbrld.log)" >&2
    fi
    pid=
}

daemon__finish() {
    daemon_stop
    rm -rf "$tmp"
}
