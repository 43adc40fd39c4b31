# common.sh: helpers of tests/deploy/test_*.sh (sourced; not a suite).
# ok/bad count checks; skip_all prints why and "0 passed, 0 failed";
# free_port picks a loopback port nobody listens on; wait_url polls a URL;
# make_tokens writes a token file (hashes) and the token itself.
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok    $1"; }
bad() { fail=$((fail + 1)); echo "FAIL  $1"; }
check() { # NAME CMD...: ok when CMD succeeds
    _n=$1
    shift
    if "$@"; then ok "$_n"; else bad "$_n"; fi
}
quiet() { "$@" >/dev/null 2>&1; } # check NAME quiet CMD: CMD's output hidden, not check's
# probe CONTAINER: its health check passes (podman healthcheck run) once in
# three tries: like a probe's failureThreshold, one failure on a loaded
# machine (a slow exec) is no verdict
probe() { quiet podman healthcheck run "$1" || quiet podman healthcheck run "$1" || quiet podman healthcheck run "$1"; }
skip_all() {
    echo "skip: $1"
    echo "0 passed, 0 failed"
    exit 0
}
finish_counts() {
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
}
free_port() {
    while :; do
        p=$(( (($(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000)) + 20000 ))
        ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
    done
}
wait_url() { # URL SECONDS: until it answers 2xx
    i=0
    until curl -fsS -o /dev/null "$1" 2>/dev/null; do
        i=$((i + 1))
        [ $i -ge $(($2 * 10)) ] && return 1
        sleep 0.1
    done
}
make_tokens() { # FILE SCOPES LABEL: appends a new token's hash line, prints the token
    t=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    printf '%s %s %s\n' "$(printf %s "$t" | sha256sum | cut -d' ' -f1)" "$2" "$3" >>"$1"
    chmod 644 "$1"
    echo "$t"
}
