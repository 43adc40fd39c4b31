#!/bin/sh
# test_ui.sh: the status page GET /ui (server/ui.html) in headless Chromium
# against a real mbrld: after the page's script has run, its DOM has the
# model, its versions and one plotted point per epoch of the training job
# (the finished one, then a running one as it goes); a screenshot is taken
# ($BUILD/test-logs/ui.png, for a person to look at). Skipped with a clear
# line when chromium is not installed (tools/deps.sh installs it for make
# test). Prints "N passed, N failed" last (tests/run.sh reads it).
bin=${MBRLD_BIN:-build/mbrld}
logs=${MBRLD_BUILD:-build}/test-logs
pass=0
fail=0
if ! command -v chromium >/dev/null 2>&1; then
    echo "skip: chromium is not installed (apt-get install chromium; make test installs it via tools/deps.sh)"
    echo "0 passed, 0 failed"
    exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbrld-ui-test.XXXXXX")
pid=
finish() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$tmp"
}
trap finish EXIT

ok() { pass=$((pass + 1)); echo "ok    $1"; }
bad() { fail=$((fail + 1)); echo "FAIL  $1"; }
check() { # name condition-exit-status
    if [ "$2" = 0 ]; then ok "$1"; else bad "$1"; fi
}

# chromium URL ARGS...: headless, a fresh profile each time, nothing fetched
# but the page (its output on stdout, its noise in a log)
n_chrome=0
chrome() {
    n_chrome=$((n_chrome + 1))
    page=$1
    shift
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --user-data-dir="$tmp/profile-$n_chrome" \
        --virtual-time-budget=5000 "$@" "$page" 2>>"$tmp/chromium.log"
}

"$bin" --listen 127.0.0.1:0 --port-file "$tmp/port" --data-dir "" --log-level warn 2>"$tmp/mbrld.log" &
pid=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
url=http://127.0.0.1:$(cat "$tmp/port")
api() { curl -sS --fail-with-body "$@"; }

api -X POST "$url/v1/models" -d '{"name": "ui-arm", "obs_dim": 2, "act_dim": 1, "act_low": [-1], "act_high": [1], "ensemble": {"members": 2, "hidden": [16, 16]}, "planner": {"method": "cem", "horizon": 5, "population": 32, "elites": 4, "iterations": 2, "particles": 2}}' >/dev/null
check "model created" $?
rows=$(jq -cn '[range(80) | (. / 80) as $x | ((. % 5) / 2 - 1) as $u |
    {obs: [$x, 0], action: [$u], reward: (-$x * $x), next_obs: [($x + 0.1 * $u), $u], terminated: false, truncated: false}]')
api -X POST "$url/v1/models/ui-arm/transitions" -d "{\"transitions\": $rows}" >/dev/null
check "transitions posted" $?
api -X POST "$url/v1/models/ui-arm/train" -d '{"max_epochs": 7, "patience": 1000, "wait": true}' >"$tmp/job1.json"
epochs=$(jq '.epochs | length' "$tmp/job1.json")
[ "$epochs" = 7 ]
check "a finished job of 7 epochs" $?
for k in 1 2 3; do api -X POST "$url/v1/models/ui-arm/act" -d '{"obs": [0.5, 0]}' >/dev/null; done

# the page itself: one HTML file, nothing from elsewhere
api -D "$tmp/headers" "$url/ui" >"$tmp/ui.html"
check "GET /ui answers" $?
grep -qi '^content-type: text/html' "$tmp/headers"
check "served as text/html" $?
! grep -Eqi '<(script|link|img)[^>]+(src|href)=' "$tmp/ui.html"
check "no external asset (no src/href on script, link, img)" $?

# the DOM after the script has run: the finished job's points
chrome "$url/ui?model=ui-arm" --dump-dom >"$tmp/dom1.html"
grep -q 'data-ready="1"' "$tmp/dom1.html"
check "the page's script ran and rendered (data-ready)" $?
grep -q '<td>ui-arm</td>' "$tmp/dom1.html"
check "the model is listed" $?
grep -q '<td>80</td>' "$tmp/dom1.html"
check "its buffer size is shown" $?
grep -q 'v1\* ' "$tmp/dom1.html"
check "its kept version is shown" $?
n_train=$(grep -o 'class="pt pt-train' "$tmp/dom1.html" | wc -l)
n_hold=$(grep -o 'class="pt pt-holdout' "$tmp/dom1.html" | wc -l)
[ "$n_train" = "$epochs" ] && [ "$n_hold" = "$epochs" ]
check "one train and one holdout point per epoch ($n_train, $n_hold of $epochs)" $?
grep -q 'id="plot-train"[^>]*data-points="7"' "$tmp/dom1.html" && grep -q 'data-job="j1"' "$tmp/dom1.html"
check "the plot is job j1's" $?
# the plotted holdout values are the job's (mean over members, as the API has them)
want=$(jq -r '.epochs[-1].holdout_loss | add / length' "$tmp/job1.json")
got=$(grep -o 'class="pt pt-holdout[^>]*data-epoch="7"[^>]*' "$tmp/dom1.html" | sed -E 's/.*data-loss="([^"]*)".*/\1/')
awk -v a="$want" -v b="$got" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b != "" && d <= 1e-6 * (a < 0 ? -a : a) + 1e-9) }'
check "epoch 7's holdout point is the job's mean holdout loss ($got vs $want)" $?
grep -q '<span>acts</span><span>3' "$tmp/dom1.html"
check "the acts are counted" $?
grep -q 'act request p50 / p99</span><span>[0-9]' "$tmp/dom1.html"
check "act latency from the metrics" $?
! grep -q 'id="error"[^>]*>[^<]' "$tmp/dom1.html"
check "no error shown" $?

# a running job: the plot follows it (a model whose epochs take a while:
# 16,000 rows through 3 x 256 x 256 in minibatches of 32)
api -X POST "$url/v1/models" -d '{"name": "ui-big", "obs_dim": 2, "act_dim": 1, "act_low": [-1], "act_high": [1], "ensemble": {"members": 3, "hidden": [256, 256]}, "train": {"batch_size": 32}}' >/dev/null
check "a larger model created" $?
big=$(jq -cn '[range(16000) | (. / 16000) as $x | ((. % 5) / 2 - 1) as $u |
    {obs: [$x, 0], action: [$u], reward: 0, next_obs: [$x, $u], terminated: false}]')
printf '{"transitions": %s}' "$big" >"$tmp/big.json"
api -X POST "$url/v1/models/ui-big/transitions" --data-binary "@$tmp/big.json" >/dev/null
check "16,000 transitions posted" $?
api -X POST "$url/v1/models/ui-big/train" -d '{"max_epochs": 1000, "patience": 1000}' >"$tmp/job2.json"
job=$(jq -r .job "$tmp/job2.json")
i=0
until [ "$(api "$url/v1/models/ui-big/jobs/$job" | jq '.epoch // 0')" -ge 3 ] 2>/dev/null || [ $i -gt 1200 ]; do sleep 0.05; i=$((i + 1)); done
chrome "$url/ui?model=ui-big&interval=300" --dump-dom >"$tmp/dom2.html"
api "$url/v1/models/ui-big/jobs/$job" >"$tmp/job2b.json"
now=$(jq '.epoch // 0' "$tmp/job2b.json")
state=$(jq -r .state "$tmp/job2b.json")
shown=$(grep -o 'class="pt pt-train' "$tmp/dom2.html" | wc -l)
grep -q "data-job=\"$job\"" "$tmp/dom2.html" && grep -q 'data-state="running"' "$tmp/dom2.html"
check "the plot shows the running job $job (now $state)" $?
[ "$shown" -ge 3 ] && [ "$shown" -le "$now" ]
check "its points so far ($shown, the job is at epoch $now)" $?
grep -q '<td>ui-big</td>.*<td>running</td>' "$tmp/dom2.html"
check "the table says it is training" $?

# a screenshot, kept for a person to look at
mkdir -p "$logs"
chrome "$url/ui?model=ui-big" --window-size=1200,900 --screenshot="$tmp/ui.png" >/dev/null
size=$(wc -c <"$tmp/ui.png" 2>/dev/null || echo 0)
[ "$(head -c 8 "$tmp/ui.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] && [ "$size" -gt 20000 ]
check "a screenshot was taken ($size bytes, $logs/ui.png)" $?
cp "$tmp/ui.png" "$logs/ui.png" 2>/dev/null

api -X DELETE "$url/v1/models/ui-big/jobs/$job" >/dev/null
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ $rc = 0 ]
check "daemon stops cleanly" $?
[ $fail = 0 ] || { echo "---- chromium log"; tail -n 20 "$tmp/chromium.log"; echo "---- mbrld log"; tail -n 20 "$tmp/mbrld.log"; }
echo "$pass passed, $fail failed"
[ $fail = 0 ]
