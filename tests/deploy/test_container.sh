#!/bin/sh
# test_container.sh: the image from ./Dockerfile, built and run with podman
# (tools/podman.sh): non-root, protected mode (no token file: no start), the
# token file mounted, HEALTHCHECK, the README's curl, mbrl and Python
# examples against it, the data volume kept across a stop (SIGTERM: exit 0)
# and a start. Skipped, saying why, without podman or a base image.
# Prints "N passed, N failed" last. `make container-test` runs it alone.
# Not for: the API itself (tests/server/, tests/clients/).
. tests/deploy/common.sh
. tools/podman.sh
why=$(pm_check) || skip_all "$why"
pm_env
out=$(pm_image)
case $? in
0) ok "image built: $MBRLD_IMAGE" ;;
2) skip_all "no base image: $out" ;;
*) echo "$out"; bad "podman build"; finish_counts; exit 1 ;;
esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbrld-ctr.XXXXXX")
name=mbrld-ctest-$$
vol=mbrld-ctest-$$
finish() {
    podman rm -f -t 5 "$name" >/dev/null 2>&1
    podman volume rm -f "$vol" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap finish EXIT
trap "exit 1" INT TERM HUP PIPE
port=$(free_port)
url=http://127.0.0.1:$port
token=$(make_tokens "$tmp/tokens" read,act,write,admin container-test)
args="--listen 0.0.0.0:$port --data-dir /var/lib/mbrld --tokens /run/secrets/mbrld-tokens"

# protected mode: 0.0.0.0 without a token file does not start
podman run --rm --network host "$MBRLD_IMAGE" --listen "0.0.0.0:$port" --data-dir "" >"$tmp/out" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q -- "--tokens" "$tmp/out"; then ok "0.0.0.0 without --tokens: refused (exit 1)"; else
    bad "0.0.0.0 without --tokens: exit $rc: $(head -c 300 "$tmp/out")"; fi
podman run --rm --network host "$MBRLD_IMAGE" >"$tmp/out" 2>&1
rc=$?
[ $rc != 0 ] && ok "the default CMD without the secret mounted: no start (exit $rc)" ||
    bad "the default CMD started without a token file"

run() {
    podman run -d --name "$name" --network host -e MBRLD_PORT="$port" -v "$vol:/var/lib/mbrld" \
        -v "$tmp/tokens:/run/secrets/mbrld-tokens:ro" "$MBRLD_IMAGE" $args >"$tmp/cid" 2>"$tmp/err"
}
check "podman run with the token file mounted" run
check "healthz answers" wait_url "$url/healthz" 30
# the x86-64-v3 image picks the widest kernels this CPU has at run time
# (issue 11): its start-up line names the same ISA as this host's own
# "kernels" line (cpu_max), AVX-512 on an AVX-512 machine
want=$(grep -o 'avx512f\|avx2' /proc/cpuinfo | sort -u | grep -q avx512f && echo avx512 || echo avx2)
kl=$(podman logs "$name" 2>&1 | grep 'msg="kernels"' | head -n 1)
case "$kl" in
*"isa=$want "*) ok "the image runs the $want kernels ($kl)" ;;
*) bad "kernels line '$kl', want isa=$want" ;;
esac
uid=$(podman exec "$name" id -u 2>/dev/null)
[ "$uid" = 10001 ] && ok "runs as uid 10001, not root" || bad "runs as uid '$uid'"
check "HEALTHCHECK passes (podman healthcheck run)" probe "$name"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/models")
[ "$code" = 401 ] && ok "no token: 401" || bad "no token: HTTP $code"
umask 077 && printf 'Authorization: Bearer %s\n' "$token" >"$tmp/auth" && umask 022

# README examples (as tests/clients/test_shell.sh runs them), with the token
extract() { awk -v m="$1" 'index($0, m) { f = 1; next } f && /^```/ && !g { g = 1; next } g && /^```/ { exit } g { print }' README.md; }
n=0
extract "curl-examples" >"$tmp/curl.txt"
while IFS= read -r line; do
    [ -z "$line" ] && continue
    n=$((n + 1))
    cmd=$(printf '%s' "$line" | sed -e "s#http://127.0.0.1:8080#$url#g" -e "s#^curl #curl -H @$tmp/auth #")
    if sh -c "$cmd" >"$tmp/out" 2>"$tmp/err"; then ok "README curl $n"; else bad "README curl $n: $line: $(cat "$tmp/err")"; fi
done <"$tmp/curl.txt"
[ $n -ge 5 ] || bad "README curl examples not found ($n)"
n=0
extract "mbrl-examples" >"$tmp/mbrl.txt"
while IFS= read -r line; do
    [ -z "$line" ] && continue
    n=$((n + 1))
    cmd=$(printf '%s' "$line" | sed 's#^mbrl #sh clients/sh/mbrl #')
    if MBRLD_URL=$url MBRLD_TOKEN=$token sh -c "$cmd" >"$tmp/out" 2>"$tmp/err"; then ok "README mbrl $n"; else
        bad "README mbrl $n: $line: $(cat "$tmp/err")"; fi
done <"$tmp/mbrl.txt"
[ $n -ge 4 ] || bad "README mbrl examples not found ($n)"
if command -v python3 >/dev/null 2>&1; then
    extract "python-example" >"$tmp/example.py"
    if MBRLD_URL=$url MBRLD_TOKEN=$token PYTHONPATH=clients/python python3 "$tmp/example.py" >"$tmp/out" 2>"$tmp/err"; then
        ok "README Python example"; else bad "README Python example: $(tail -n 3 "$tmp/err")"; fi
fi

# the volume: a model survives a stop (SIGTERM, exit 0) and a start
mbrl="env MBRLD_URL=$url MBRLD_TOKEN=$token sh clients/sh/mbrl"
$mbrl create '{"name": "kept", "obs_dim": 1, "act_dim": 1, "act_low": [-1], "act_high": [1]}' >/dev/null &&
    $mbrl post kept '[{"obs": [0], "action": [1], "reward": 0, "next_obs": [0.1], "terminated": false, "truncated": false}]' \
        --client ct --seq 1 >/dev/null
check "a model with one row" test $? = 0
check "podman stop (SIGTERM)" quiet podman stop -t 30 "$name"
rc=$(podman inspect -f '{{.State.ExitCode}}' "$name")
[ "$rc" = 0 ] && ok "mbrld exited 0 on SIGTERM" || bad "exit code $rc on SIGTERM: $(podman logs "$name" 2>&1 | tail -n 3)"
check "podman start" quiet podman start "$name"
check "healthz after the restart" wait_url "$url/healthz" 30
size=$($mbrl --raw get kept 2>/dev/null | jq -r .buffer_size)
[ "$size" = 1 ] && ok "the model and its row are back from the volume" || bad "after restart: buffer_size '$size'"
if podman logs "$name" 2>&1 | grep -qF -- "$token"; then bad "the token is in the log"; else ok "the log has no token"; fi
finish_counts
