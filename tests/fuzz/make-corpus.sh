#!/bin/sh
# make-corpus.sh [MBRLD]: (re)writes the seed corpus tests/fuzz/corpus/*
# from a real daemon: request bodies as the tests and README send them, a
# write-ahead log segment and an export file. Each seed starts with the
# target's mode byte (see each fuzz_*.c). Run from the repository root.
set -e
bin=${1:-build/mbrld}
c=tests/fuzz/corpus
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbrld-corpus.XXXXXX")
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p $c/transitions $c/requests $c/wal $c/snapshot
seed() { # DIR NAME MODEBYTE(octal) FILE-or-TEXT
    { printf "\\$3"; if [ -f "$4" ]; then cat "$4"; else printf '%s' "$4"; fi; } >"$c/$1/$2"
}
row='{"obs": [0.5, 0, 1e-3], "action": [1], "reward": -0.25, "next_obs": [0.51, 0.1, -2.5E2]}'
seed transitions one 002 "{\"transitions\": [$row]}"
seed transitions idem 002 "{\"transitions\": [$row, {\"obs\": [1, 2, 3], \"action\": [0], \"reward\": 0, \"next_obs\": [0, 0, 0], \"terminated\": true, \"truncated\": false}], \"client\": \"robot-7\", \"seq\": 12}"
seed transitions escaped 002 "{\"c\\u006cient\": \"r\\u00e9b\\ud83d\\ude00\", \"seq\": 1, \"transitions\": [{\"\\u006fbs\": [1, 2, 3], \"action\": [0], \"reward\": 0, \"next_obs\": [0, 0, 0], \"truncated\": null}]}"
seed transitions wide 023 "{\"transitions\": [{\"obs\": [1, 2, 3, 4], \"action\": [0, 1], \"reward\": 1, \"next_obs\": [4, 3, 2, 1]}]}"
seed transitions bad 002 "{\"transitions\": [{\"obs\": [1, 2], \"action\": [0], \"reward\": \"x\"}], \"extra\": [[[1]]]}"

spec='{"name": "arm", "obs_dim": 3, "act_dim": 1, "act_low": [-1], "act_high": [1], "ensemble": {"members": 3, "hidden": [64, 64]}, "planner": {"horizon": 15, "population": 200, "elites": 20, "iterations": 3, "particles": 10}, "auto_train": {"every": 200, "max_epochs": 20}}'
seed requests spec-readme 000 "$spec"
seed requests spec-small 000 '{"name": "toy", "obs_dim": 2, "act_dim": 1, "act_low": [-1], "act_high": [1], "ensemble": {"members": 2, "hidden": [32, 32]}, "planner": {"method": "cem", "horizon": 10, "population": 64, "elites": 8, "iterations": 2, "particles": 4}}'
seed requests train 001 '{"max_epochs": 5, "patience": 2, "min_improvement": 0.01, "batch_size": 32, "lr": 0.001, "seed": 3, "wait": true}'
seed requests act 002 '{"obs": [0.1, 0.2, 0.3], "session": "robot-7", "planner": {"method": "icem", "horizon": 4, "population": 16, "elites": 4, "iterations": 2, "particles": 2}}'
seed requests act-mppi 002 '{"obs": [0, 0, 0], "planner": {"method": "mppi", "temperature": 0.5}}'

"$bin" --listen 127.0.0.1:0 --port-file "$tmp/port" --data-dir "$tmp/data" --log-level warn 2>"$tmp/log" &
pid=$!
i=0; while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
u=http://127.0.0.1:$(cat "$tmp/port")
curl -fsS -X POST $u/v1/models -d '{"name": "s", "obs_dim": 3, "act_dim": 1, "act_low": [-2], "act_high": [2], "ensemble": {"members": 2, "hidden": [4]}, "buffer": {"capacity": 8}, "reward": {"terms": [{"type": "quadratic", "indices": [0, 1], "target": [1, 0], "weight": -1}, {"type": "action_l2", "weight": -0.1}]}, "termination": {"bounds": [{"index": 2, "min": -5, "max": 5}]}}' >/dev/null
curl -fsS "$u/v1/models/s" | jq -c .spec >"$tmp/full"
seed requests spec-full 000 "$tmp/full"
for k in 1 2 3; do
    curl -fsS -X POST $u/v1/models/s/transitions -d "{\"transitions\": [$row, {\"obs\": [$k, 2, 3], \"action\": [0.5], \"reward\": 1, \"next_obs\": [0, 0, $k], \"terminated\": true}], \"client\": \"c$k\", \"seq\": $k}" >/dev/null
done
curl -fsS -X POST $u/v1/models/s/transitions -d "{\"transitions\": [$row]}" >/dev/null
# the segment before training: the snapshot after a job removes covered segments
cp "$(find "$tmp/data" -name 'wal-*.log' | head -n 1)" "$tmp/segment"
seg=$tmp/segment
curl -fsS -X POST $u/v1/models/s/train -d '{"max_epochs": 2, "wait": true}' >/dev/null
curl -fsS $u/v1/models/s/export -o "$tmp/export"
seed wal segment-fixcrc 001 "$seg"
seed wal segment-repair 003 "$seg"
seed wal segment-raw 000 "$seg"
seed snapshot export-fixcrc 001 "$tmp/export"
seed snapshot export-skipbuf 003 "$tmp/export"
seed snapshot export-raw 000 "$tmp/export"
kill $pid; wait $pid || true
ls -l $c/*
