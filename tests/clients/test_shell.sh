#!/bin/sh
# test_shell.sh: the shell client clients/sh/mbrl against a real mbrld
# (every subcommand, its exit codes and error messages), and the curl and
# mbrl examples of README.md, run line by line as a user would paste them.
# Prints "N passed, N failed" last (tests/run.sh reads it).
# Not for: the daemon's validation rules (tests/server/).
bin=${MBRLD_BIN:-build/mbrld}
mbrl="sh clients/sh/mbrl"
pass=0
fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbrl-sh-test.XXXXXX")
pid=
finish() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$tmp"
}
trap finish EXIT

ok() { pass=$((pass + 1)); echo "ok    $1"; }
bad() { fail=$((fail + 1)); echo "FAIL  $1"; [ -s "$tmp/err" ] && sed 's/^/      stderr: /' "$tmp/err" | head -n 5; }

# expect NAME RC CMD...: runs CMD (stdout -> $tmp/out, stderr -> $tmp/err),
# checks its exit status.
expect() {
    name=$1 want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" = "$want" ]; then ok "$name"; else bad "$name (exit $got, want $want)"; fi
}
# has NAME FILE PATTERN: FILE contains PATTERN (grep -E).
has() {
    if grep -Eq -- "$3" "$2"; then ok "$1"; else bad "$1 ('$3' not in: $(head -c 300 "$2"))"; fi
}
# jqtrue NAME FILTER: the last answer satisfies the jq filter.
jqtrue() {
    if jq -e "$2" "$tmp/out" >/dev/null 2>&1; then ok "$1"; else bad "$1 ($2 on: $(head -c 300 "$tmp/out"))"; fi
}

# usage errors need no daemon
expect "help exits 0" 0 $mbrl --help
has "help lists act" "$tmp/out" "act MODEL OBS"
expect "no command: usage, exit 2" 2 $mbrl
expect "unknown command: exit 2" 2 $mbrl frobnicate
expect "unknown option: exit 2" 2 $mbrl --frob list
expect "bad model name: exit 2" 2 $mbrl get 'a/b'
has "bad name explained" "$tmp/err" "not \[A-Za-z0-9_.-\]"
expect "bad JSON: exit 2" 2 $mbrl create '{nope'
expect "missing args: exit 2" 2 $mbrl act onlymodel
expect "no daemon: exit 3" 3 $mbrl --url http://127.0.0.1:1 list
has "no daemon explained" "$tmp/err" "no answer from http://127.0.0.1:1"

if [ ! -x "$bin" ]; then
    echo "FAIL  no daemon at $bin: build it first (make all)"
    fail=$((fail + 1))
    echo "$pass passed, $fail failed"
    exit 1
fi
"$bin" --listen 127.0.0.1:0 --port-file "$tmp/port" --data-dir "$tmp/data" --log-level warn 2>"$tmp/mbrld.log" &
pid=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
MBRLD_URL=http://127.0.0.1:$(cat "$tmp/port")
export MBRLD_URL
i=0
until curl -fsS "$MBRLD_URL/healthz" >/dev/null 2>&1 || [ $i -gt 300 ]; do sleep 0.1; i=$((i + 1)); done

expect "health" 0 $mbrl health
expect "ready" 0 $mbrl ready
expect "metrics" 0 $mbrl metrics
has "metrics are Prometheus text" "$tmp/out" "^# (TYPE|HELP) "
expect "openapi" 0 $mbrl openapi
jqtrue "openapi lists paths" '.paths | length > 0'
expect "list (empty)" 0 $mbrl --raw list
jqtrue "list is empty" '.models == []'
spec='{"name": "sh1", "obs_dim": 2, "act_dim": 1, "act_low": [-1], "act_high": [1], "ensemble": {"members": 2, "hidden": [16]}, "reward": {"terms": [{"type": "quadratic", "indices": [0], "target": [0], "weight": 1}]}, "planner": {"method": "cem", "horizon": 5, "population": 16, "elites": 4, "iterations": 2, "particles": 2}}'
expect "create" 0 $mbrl create "$spec"
printf '%s' "$spec" >"$tmp/spec.json"
expect "create again from @file: 409, exit 1" 1 $mbrl create "@$tmp/spec.json"
has "409 printed readably" "$tmp/err" "^mbrl: HTTP 409 [a-z_]+: "
expect "create from stdin: bad field, exit 1" 1 sh -c "echo '{\"name\": \"sh2\", \"obs_dim\": -1, \"act_dim\": 1}' | $mbrl create -"
has "field named" "$tmp/err" "\(field: obs_dim\)"
expect "get" 0 $mbrl --raw get sh1
jqtrue "get shows the model" '.name == "sh1" and .buffer_size == 0'
expect "get missing: exit 1" 1 $mbrl get nope
has "404 printed readably" "$tmp/err" "^mbrl: HTTP 404 not_found: "
expect "act before training" 0 $mbrl --raw act sh1 '[0.5, 0]'
jqtrue "random before training" '.source == "random" and (.action | length) == 1'

# 40 transitions of x' = x + 0.1 u, v' = u
rows=$(jq -cn '[range(40) | (. / 40) as $x | ((. % 5) / 2 - 1) as $u |
    {obs: [$x, 0], action: [$u], reward: (-$x * $x), next_obs: [($x + 0.1 * $u), $u],
     terminated: false, truncated: false}]')
expect "post with client+seq" 0 $mbrl --raw post sh1 "$rows" --client shtest --seq 1
jqtrue "post accepted 40" '.accepted == 40 and .buffer_size == 40'
expect "same client+seq again" 0 $mbrl --raw post sh1 "$rows" --client shtest --seq 1
expect "buffer unchanged" 0 $mbrl --raw get sh1
jqtrue "no duplicate rows" '.buffer_size == 40'
expect "post object body" 0 $mbrl --raw post sh1 "{\"transitions\": $rows}"
jqtrue "object body accepted" '.buffer_size == 80'
expect "post bad width: exit 1" 1 $mbrl post sh1 '[{"obs": [1], "action": [0], "reward": 0, "next_obs": [1, 0], "terminated": false, "truncated": false}]'
has "bad width names the field" "$tmp/err" "field: .*obs"
expect "post bad seq: exit 2" 2 $mbrl post sh1 "$rows" --seq x

expect "train (202)" 0 $mbrl --raw train sh1 --epochs 3 --patience 2
jqtrue "train answers a job id" '.job | type == "string"'
job=$(jq -r .job "$tmp/out")
expect "job" 0 $mbrl --raw job sh1 "$job"
jqtrue "job shows state" '.state | IN("running", "done")'
expect "wait" 0 $mbrl --raw wait sh1 "$job" --poll 0.05
jqtrue "job done" '.state == "done" and .version >= 1'
expect "job missing: exit 1" 1 $mbrl job sh1 j9999
expect "cancel a finished job: an answer" 0 sh -c "$mbrl cancel sh1 $job >/dev/null 2>&1; [ \$? -le 1 ]"
expect "train --wait" 0 $mbrl --raw train sh1 --epochs 2 --wait
jqtrue "train --wait answers the finished job" '.state == "done" and .version >= 2'
expect "train --batch-size --min-steps --min-epochs" 0 $mbrl --raw train sh1 --epochs 2 --batch-size 16 --min-steps 0 --min-epochs 1 --wait
jqtrue "explicit minibatch and floor apply as sent" '.result.batch_size == 16 and .result.min_epochs == 1 and .result.epochs == 2'
expect "act" 0 $mbrl --raw act sh1 '[0.5, 0]' --session s1
jqtrue "planner after training" '.source == "planner" and (.plan_ms | type == "number") and .version >= 2'
expect "act with goal" 0 $mbrl --raw act sh1 '[0.5, 0]' --goal 0 '[0.3]'
jqtrue "goal act answers" '.source == "planner"'
expect "act with a deadline" 0 $mbrl --raw act sh1 '[0.5, 0]' --deadline 5000
jqtrue "deadline act answers" '.source == "planner" and .truncated == false'
expect "act bad deadline: exit 2" 2 $mbrl act sh1 '[0.5, 0]' --deadline soon
expect "act with a seed" 0 $mbrl --raw act sh1 '[0.5, 0]' --seed 7
cp "$tmp/out" "$tmp/seed1"
expect "act with the same seed" 0 $mbrl --raw act sh1 '[0.5, 0]' --seed 7
cp "$tmp/out" "$tmp/seed2"
expect "the same seed plans the same action" 0 sh -c "[ \"\$(jq -c .action '$tmp/seed1')\" = \"\$(jq -c .action '$tmp/seed2')\" ]"
expect "act ilqr with gains and plan" 0 $mbrl --raw act sh1 '[0.5, 0]' --planner '{"method": "ilqr", "horizon": 4}' --gains --plan
jqtrue "gains and plan answered" '(.gains | length) == 1 and (.nominal_obs | length) == 2 and (.plan.actions | length) == 4'
expect "act --planner not JSON: exit 2" 2 $mbrl act sh1 '[0.5, 0]' --planner '{'
expect "act bad obs: exit 1" 1 $mbrl act sh1 '[0.5]'
has "act error names obs" "$tmp/err" "obs"
# policies (issue 13): sh1 has none (409, exit 1); shp has one
expect "policy-train without a policy: exit 1" 1 $mbrl policy-train sh1 --wait
expect "act --policy without a policy: exit 1" 1 $mbrl act sh1 '[0.5, 0]' --policy
expect "policy-train bad algorithm: exit 2" 2 $mbrl policy-train sh1 --algorithm ppo
expect "policy-train bad steps: exit 2" 2 $mbrl policy-train sh1 --steps x
expect "create with a policy" 0 $mbrl create "$(printf '%s' "$spec" | jq -c '.name = "shp" | .policy = {hidden: [16, 16], rollouts: 20, retain_steps: 5, batch_size: 16}')"
expect "post to shp" 0 $mbrl --raw post shp "$rows"
expect "train shp" 0 $mbrl --raw train shp --epochs 2 --wait
expect "policy-train --wait" 0 $mbrl --raw policy-train shp --steps 2 --wait
jqtrue "policy-train answers the finished policy job" '.kind == "policy" and .state == "done" and .policy_version == 1'
expect "policy-train (202) --algorithm bptt --time-budget" 0 $mbrl --raw policy-train shp --algorithm bptt --time-budget 0.2
jqtrue "policy-train answers a job id" '.job | type == "string"'
expect "wait for the policy job" 0 $mbrl --raw wait shp "$(jq -r .job "$tmp/out")" --poll 0.05
expect "act --policy" 0 $mbrl --raw act shp '[0.5, 0]' --policy
jqtrue "the policy answers" '.source == "policy" and .policy_version == 2 and .explore == false'
expect "act --policy --explore" 0 $mbrl --raw act shp '[0.5, 0]' --policy --explore
jqtrue "a sample" '.source == "policy" and .explore == true'
expect "delete shp" 0 $mbrl delete shp
expect "predict" 0 $mbrl --raw predict sh1 '[0.5, 0]' '[[1], [0], [-1]]'
jqtrue "predict 3 steps" '(.mean | length) == 3 and (.std | length) == 3'
# versions: two published (the two jobs above), a pin, a promote, the newest as a file
expect "versions" 0 $mbrl --raw versions sh1
jqtrue "versions lists the kept ones" '.current >= 2 and (.versions | length) >= 2 and (.versions[0].train_loss | length) == 2'
cur=$(jq -r .current "$tmp/out")
prev=$(jq -r '.versions[1].version' "$tmp/out")
expect "act pinned" 0 $mbrl --raw act sh1 '[0.5, 0]' --version "$prev"
jqtrue "pinned act answers with the pinned version" ".version == $prev"
expect "act --version x: exit 2" 2 $mbrl act sh1 '[0.5, 0]' --version x
expect "promote" 0 $mbrl --raw promote sh1 "$prev"
jqtrue "promote makes it current" ".current == $prev"
expect "act after promote" 0 $mbrl --raw act sh1 '[0.5, 0]'
jqtrue "acts answer with the promoted version" ".version == $prev"
expect "promote back" 0 $mbrl --raw promote sh1 "$cur"
expect "promote unknown: exit 1" 1 $mbrl promote sh1 999
has "promote 404 printed readably" "$tmp/err" "^mbrl: HTTP 404 not_found: .*field: version"
expect "latest" 0 $mbrl latest sh1 "$tmp/sh1.latest"
if [ "$(head -c 8 "$tmp/sh1.latest")" = MBRLSNAP ]; then ok "latest is a snapshot-format file"; else bad "latest is a snapshot-format file"; fi
expect "request GET" 0 $mbrl --raw request GET /v1/models
jqtrue "request answers" '.models | length == 1'
expect "request 405: exit 1" 1 $mbrl request DELETE /v1/models

# persistence endpoints (issue 5): a round trip, or a clean error answer
$mbrl snapshot sh1 >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc = 0 ] || { [ $rc = 1 ] && grep -q "^mbrl: HTTP 40[45]" "$tmp/err"; }; then ok "snapshot (exit $rc)"; else bad "snapshot (exit $rc)"; fi
$mbrl export sh1 "$tmp/sh1.export" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc = 0 ]; then
    ok "export"
    expect "import" 0 $mbrl import sh1copy "$tmp/sh1.export"
    expect "imported model" 0 $mbrl --raw get sh1copy
    jqtrue "import kept the data" '.buffer_size == 80'
    expect "delete import" 0 $mbrl delete sh1copy
elif [ $rc = 1 ] && grep -q "^mbrl: HTTP 40[45]" "$tmp/err"; then
    ok "export: this daemon has no export endpoint ($(head -n 1 "$tmp/err"))"
    echo x >"$tmp/x"
    expect "import: clean error too" 1 $mbrl import sh1copy "$tmp/x"
else
    bad "export (exit $rc)"
fi
expect "import unreadable file: exit 2" 2 $mbrl import sh1copy /nonexistent/file

expect "delete" 0 $mbrl delete sh1
expect "delete again: exit 1" 1 $mbrl delete sh1
expect "--url wins over MBRLD_URL" 0 env MBRLD_URL=http://127.0.0.1:1 $mbrl --url "$MBRLD_URL" list

# README.md examples, line by line, against this daemon
extract() { # marker
    awk -v m="$1" 'index($0, m) { f = 1; next } f && /^```sh/ { g = 1; next } g && /^```/ { exit } g { print }' README.md
}
n=0
extract "curl-examples" >"$tmp/curl.txt"
while IFS= read -r line; do
    [ -z "$line" ] && continue
    n=$((n + 1))
    cmd=$(printf '%s' "$line" | sed "s#http://127.0.0.1:8080#$MBRLD_URL#g")
    if sh -c "$cmd" >"$tmp/out" 2>"$tmp/err" && { [ ! -s "$tmp/out" ] || jq -e . "$tmp/out" >/dev/null 2>&1; }; then
        ok "README curl $n: $(printf '%s' "$line" | cut -c1-70)"
    else
        bad "README curl $n: $line"
    fi
done <"$tmp/curl.txt"
[ $n -ge 5 ] && ok "README has $n curl examples" || bad "README curl examples not found ($n)"
n=0
extract "mbrl-examples" >"$tmp/mbrl.txt"
while IFS= read -r line; do
    [ -z "$line" ] && continue
    n=$((n + 1))
    cmd=$(printf '%s' "$line" | sed 's#^mbrl #sh clients/sh/mbrl #')
    if sh -c "$cmd" >"$tmp/out" 2>"$tmp/err"; then
        ok "README mbrl $n: $(printf '%s' "$line" | cut -c1-70)"
    else
        bad "README mbrl $n: $line"
    fi
done <"$tmp/mbrl.txt"
[ $n -ge 4 ] && ok "README has $n mbrl examples" || bad "README mbrl examples not found ($n)"

# Tokens (issue 10): MBRLD_TOKEN and --token-file reach the daemon, the
# token is on no command line of curl (a curl wrapper early in PATH records
# what /proc/PID/cmdline shows, and the mode of the header file it is
# handed), --token T warns, and nothing is left in TMPDIR.
secret=sh-secret-token-9c1f
printf '%s %s sh-test\n' "$(printf %s "$secret" | sha256sum | cut -d' ' -f1)" read,act,write,admin >"$tmp/tokens"
printf '%s\n' "$secret" >"$tmp/token-file"
chmod 600 "$tmp/token-file"
"$bin" --listen 127.0.0.1:0 --port-file "$tmp/port2" --data-dir '' --tokens "$tmp/tokens" --log-level warn \
    2>"$tmp/mbrld2.log" &
pid2=$!
i=0
while [ ! -s "$tmp/port2" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
url2=http://127.0.0.1:$(cat "$tmp/port2")
i=0
until curl -fsS "$url2/healthz" >/dev/null 2>&1 || [ $i -gt 300 ]; do sleep 0.1; i=$((i + 1)); done
real_curl=$(command -v curl)
mkdir -p "$tmp/bin" "$tmp/t"
{
    printf '%s\n' '#!/bin/sh' '# what ps and /proc show of this curl, and the mode of any -H @FILE'
    printf '%s\n' "log='$tmp/curl-argv'"
    printf '%s\n' 'tr "\\000" "\\n" </proc/$$/cmdline >>"$log"'
    printf '%s\n' 'for a in "$@"; do case $a in @*.auth) stat -c "mode %a" "${a#@}" >>"$log" ;; esac; done'
    printf '%s\n' "exec '$real_curl' \"\$@\""
} >"$tmp/bin/curl"
chmod +x "$tmp/bin/curl"
: >"$tmp/curl-argv"
in_env="env TMPDIR=$tmp/t PATH=$tmp/bin:$PATH MBRLD_URL=$url2"
expect "no token: 401, exit 1" 1 $in_env $mbrl list
has "401 printed readably" "$tmp/err" "^mbrl: HTTP 401 unauthenticated"
expect "MBRLD_TOKEN" 0 $in_env MBRLD_TOKEN="$secret" $mbrl --raw list
jqtrue "MBRLD_TOKEN answers" '.models == []'
expect "--token-file" 0 $in_env $mbrl --token-file "$tmp/token-file" --raw create '{"name": "tk", "obs_dim": 1, "act_dim": 1, "act_low": [-1], "act_high": [1]}'
if grep -q warning "$tmp/err"; then bad "--token-file: no warning"; else ok "--token-file: no warning"; fi
expect "--token-file wins over a wrong MBRLD_TOKEN" 0 $in_env MBRLD_TOKEN=wrong $mbrl --token-file "$tmp/token-file" get tk
expect "a wrong MBRLD_TOKEN: exit 1" 1 $in_env MBRLD_TOKEN=wrong $mbrl get tk
has "invalid token: 401" "$tmp/err" "HTTP 401"
expect "--token still works" 0 $in_env $mbrl --token "$secret" delete tk
has "--token warns about ps" "$tmp/err" "warning: --token .*ps"
expect "--token-file missing: exit 2" 2 $mbrl --token-file "$tmp/nonexistent" list
: >"$tmp/empty-token"
expect "--token-file empty: exit 2" 2 $mbrl --token-file "$tmp/empty-token" list
grep -q '^-H$' "$tmp/curl-argv" && grep -q '^@.*\.auth$' "$tmp/curl-argv" && ok "the curl wrapper saw -H @FILE" ||
    bad "the curl wrapper did not run, or saw no -H @FILE: $(head -c 300 "$tmp/curl-argv")"
if grep -qF -- "$secret" "$tmp/curl-argv"; then bad "the token shows in curl's cmdline"; else ok "the token is on no curl command line"; fi
if grep -q '^mode ' "$tmp/curl-argv" && ! grep '^mode ' "$tmp/curl-argv" | grep -qv '^mode 600$'; then
    ok "the header file is mode 600"
else
    bad "header file modes: $(grep '^mode ' "$tmp/curl-argv" | sort | uniq -c | tr '\n' ' ')"
fi
left=$(ls -A "$tmp/t")
[ -z "$left" ] && ok "nothing left in TMPDIR" || bad "left in TMPDIR: $left"
if grep -qF -- "$secret" "$tmp/mbrld2.log"; then bad "the daemon logged the token"; else ok "the daemon log has no token"; fi
kill -TERM "$pid2"
wait "$pid2"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ $rc = 0 ] && ok "daemon stops cleanly on SIGTERM" || bad "daemon exit status $rc"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
