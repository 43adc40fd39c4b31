#!/bin/sh
# test_tls.sh: HTTPS (--tls-cert/--tls-key) against a certificate made here
# with openssl: curl verifies it and is served; TLS 1.2 and 1.3 are spoken;
# TLS 1.1 is refused, to openssl s_client and to curl (while the same
# clients complete TLS 1.1 with `openssl s_server`, so the refusal is the
# daemon's); --tls-priorities
# applies (NORMAL:-VERS-TLS1.3 leaves 1.2 only); a bad priority string stops
# the start with exit 1. Prints "N passed, N failed" last.
# Mirrors server/http.c (TLS options) and server/options.c.
bin=${MBRLD_BIN:-build/mbrld}
pass=0
fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbrld-tls-test.XXXXXX")
pids=
finish() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap finish EXIT
ok() { pass=$((pass + 1)); echo "ok    $1"; }
bad() { fail=$((fail + 1)); echo "FAIL  $1"; }
check() { if [ "$2" = 0 ]; then ok "$1"; else bad "$1"; fi; }

if ! command -v openssl >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
    echo "FAIL  openssl and curl are needed (make deps installs them)"
    echo "0 passed, 1 failed"
    exit 1
fi

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost >"$tmp/req.log" 2>&1
check "openssl makes a certificate" $?

# start_tls NAME [ARGS...]: an HTTPS daemon; its port in $port
start_tls() {
    name=$1
    shift
    rm -f "$tmp/port"
    "$bin" --listen 127.0.0.1:0 --port-file "$tmp/port" --data-dir "" --log-level warn \
        --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" "$@" 2>"$tmp/$name.log" &
    last=$!
    pids="$pids $last"
    i=0
    while [ ! -s "$tmp/port" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
    port=$(cat "$tmp/port" 2>/dev/null)
}
stop_last() { kill -TERM "$last" 2>/dev/null; wait "$last"; rc=$?; pids=$(echo "$pids" | sed "s/ $last//"); return $rc; }

# curl11 PORT PATH: curl limited to TLS 1.1 (the client's system policy
# lifted as for proto); prints the HTTP code, 000 when no answer.
curl11() {
    OPENSSL_CONF=/dev/null curl -s -o /dev/null -w '%{http_code}' --cacert "$tmp/cert.pem" --tlsv1.1 --tls-max 1.1 \
        --ciphers 'DEFAULT:@SECLEVEL=0' "https://127.0.0.1:$1$2"
}

# proto PORT FLAG: the protocol openssl s_client negotiates with FLAG
# (-tls1_1, -tls1_2, -tls1_3), or NONE when the handshake fails (no cipher
# agreed). OPENSSL_CONF=/dev/null and SECLEVEL=0: Debian's system policy
# would refuse TLS 1.1 on the client side.
proto() {
    echo | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$1" "$2" \
        -cipher 'DEFAULT:@SECLEVEL=0' >"$tmp/s_client.out" 2>/dev/null
    if grep -q 'Cipher is (NONE)' "$tmp/s_client.out" || ! grep -q 'Cipher is' "$tmp/s_client.out"; then
        echo NONE
    else
        sed -n 's/^ *Protocol *: *//p' "$tmp/s_client.out" | head -n 1
    fi
}

start_tls default
[ -n "$port" ]
check "starts with --tls-cert/--tls-key" $?
code=$(curl -s -o "$tmp/out" -w '%{http_code}' --cacert "$tmp/cert.pem" "https://127.0.0.1:$port/healthz")
[ "$code" = 200 ] && grep -q '"ok"' "$tmp/out"
check "curl --cacert: /healthz 200 over HTTPS" $?
code=$(curl -s -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/healthz")
[ "$code" = 000 ]
check "curl without the CA refuses the self-signed certificate" $?
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$tmp/cert.pem" --tlsv1.2 --tls-max 1.2 "https://127.0.0.1:$port/v1/models")
[ "$code" = 200 ]
check "curl --tls-max 1.2: served" $?
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$tmp/cert.pem" --tlsv1.3 "https://127.0.0.1:$port/v1/models")
[ "$code" = 200 ]
check "curl --tlsv1.3: served" $?
[ "$(proto "$port" -tls1_2)" = TLSv1.2 ]
check "openssl s_client -tls1_2 negotiates TLSv1.2" $?
p11=$(proto "$port" -tls1_1)
[ "$p11" = NONE ]
check "TLS 1.1 refused by the daemon (got '${p11}')" $?
code=$(curl11 "$port" /healthz)
[ "$code" = 000 ]
check "curl --tlsv1.1 --tls-max 1.1: refused (HTTP code $code)" $?
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")
[ "$code" != 200 ]
check "plain HTTP on the TLS port is not served" $?
stop_last
check "stops with exit 0" $?

# the control: this client can speak TLS 1.1 to a server that allows it
OPENSSL_CONF=/dev/null openssl s_server -accept 127.0.0.1:0 -cert "$tmp/cert.pem" -key "$tmp/key.pem" \
    -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' -www >"$tmp/s_server.log" 2>&1 &
sp=$!
pids="$pids $sp"
i=0
while ! grep -qs ACCEPT "$tmp/s_server.log" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
sport=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$tmp/s_server.log" | head -n 1)
[ "$(proto "$sport" -tls1_1)" = TLSv1.1 ]
check "control: the same client negotiates TLSv1.1 with openssl s_server" $?
[ "$(curl11 "$sport" /)" = 200 ]
check "control: curl --tlsv1.1 --tls-max 1.1 is served by openssl s_server" $?
kill -TERM "$sp" 2>/dev/null
wait "$sp" 2>/dev/null
pids=$(echo "$pids" | sed "s/ $sp//")

start_tls prio --tls-priorities NORMAL:-VERS-TLS1.3
[ -n "$port" ]
check "starts with --tls-priorities NORMAL:-VERS-TLS1.3" $?
[ "$(proto "$port" -tls1_3)" != TLSv1.3 ]
check "--tls-priorities NORMAL:-VERS-TLS1.3: no TLS 1.3" $?
[ "$(proto "$port" -tls1_2)" = TLSv1.2 ]
check "--tls-priorities NORMAL:-VERS-TLS1.3: TLS 1.2 still" $?
p11=$(proto "$port" -tls1_1)
[ "$p11" = NONE ]
check "--tls-priorities cannot bring TLS 1.1 back (NORMAL:-VERS-TLS1.3)" $?
stop_last
start_tls prio11 --tls-priorities NORMAL:+VERS-TLS1.1:+VERS-TLS1.0
[ -n "$port" ]
check "starts with --tls-priorities NORMAL:+VERS-TLS1.1:+VERS-TLS1.0" $?
p11=$(proto "$port" -tls1_1)
[ "$p11" = NONE ]
check "--tls-priorities NORMAL:+VERS-TLS1.1: TLS 1.1 still refused" $?
stop_last

"$bin" --listen 127.0.0.1:0 --data-dir "" --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" \
    --tls-priorities 'NORMAL:+NO-SUCH-THING' >"$tmp/bad.out" 2>"$tmp/bad.log" &
bp=$!
pids="$pids $bp"
wait "$bp"
rc=$?
pids=$(echo "$pids" | sed "s/ $bp//")
[ "$rc" = 1 ] && grep -q "tls-priorities" "$tmp/bad.log"
check "a bad --tls-priorities refuses to start, naming the option (exit $rc)" $?

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
