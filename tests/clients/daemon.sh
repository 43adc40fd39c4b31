# daemon.sh: helpers of the tests/clients/test_*.sh suites that run
# build/mbrl-sim through a real mbrld (sourced; not a suite).
# Sets build, bin (the daemon: $MBRLD_BIN), sim, and pass=0, fail=0.
# need_daemon_and_sim: skips the suite (0 checks, said loudly) when the
#   daemon or mbrl-sim is not built;
# start_daemon PREFIX: a temporary directory $tmp (PREFIX.XXXXXX), mbrld on a
#   free loopback port with its data there, $url once /healthz answers; at
#   exit the daemon is stopped and $tmp removed. A daemon that does not
#   start is the suite's one failure (its log printed);
# run NAME ARGS...: mbrl-sim through the daemon, CSV into $tmp/NAME.csv;
# stop_daemon: stops it (SIGTERM) and waits for it.
build=${MBRLD_BUILD:-build}
bin=${MBRLD_BIN:-$build/mbrld}
sim=$build/mbrl-sim
# shellcheck disable=SC2034 # counted by the suite that sources this
pass=0
# shellcheck disable=SC2034
fail=0

need_daemon_and_sim() {
    if [ ! -x "$bin" ] || [ ! -x "$sim" ]; then
        echo "SKIPPED: learning tests need $bin and $sim (make all)"
        echo "0 passed, 0 failed"
        exit 0
    fi
}

start_daemon() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    pid=
    trap finish EXIT
    "$bin" --listen 127.0.0.1:0 --port-file "$tmp/port" --data-dir "$tmp/data" --log-level warn 2>"$tmp/mbrld.log" &
    pid=$!
    i=0
    while [ ! -s "$tmp/port" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    url=http://127.0.0.1:$(cat "$tmp/port" 2>/dev/null)
    i=0
    until curl -fsS "$url/healthz" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 300 ]; then
            echo "FAIL  mbrld did not start; log:"
            cat "$tmp/mbrld.log"
            echo "0 passed, 1 failed"
            exit 1
        fi
        sleep 0.1
    done
}

finish() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$tmp"
}

run() {
    name=$1
    shift
    start=$(date +%s)
    "$sim" --url "$url" --model "$name" --out "$tmp" --csv "$tmp/$name.csv" --no-plot "$@"
    rc=$?
    echo "($name: $(($(date +%s) - start)) s, exit $rc)"
    return $rc
}

stop_daemon() {
    kill -TERM "$pid"
    wait "$pid"
    pid=
}
