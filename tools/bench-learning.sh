#!/bin/sh
# bench-learning.sh: the learning curves of docs/RESULTS.md through a real
# daemon (`make bench-learning`, or run by hand to run some of them):
#
#   sh tools/bench-learning.sh [--build DIR] [--out DIR] [--seeds "1 2 3"]
#                              [--episodes N] [TASK...]
#
# TASKs (default: all, cheap ones first): pendulum inverted_pendulum swimmer
# hopper halfcheetah, and plain (the issue's plain Pendulum-v1 client: 5 x 3
# x 200 ensemble with a learned reward, CEM H 25, N 400, 5 iterations, P 20,
# trained with a bare {"wait": true} and with {"max_epochs": 50, "patience":
# 5}; slow: ~1.7 s per action here). Seeds: 1-5 for pendulum and
# inverted_pendulum, 1-3 otherwise, unless --seeds.
#
# One daemon (BUILD/mbrld, temporary data directory) serves the whole run.
# Every (task, seed) writes OUT/TASK-sSEED.csv as it goes (mbrl-sim flushes
# a row per episode and redraws OUT/TASK-sSEED.png), its progress lines
# (episode, steps/s, ETA) to OUT/TASK-sSEED.log; a run whose CSV already has
# all its episodes is skipped, so an interrupted run resumes where it
# stopped (delete the CSV to redo one). After each task: OUT/TASK.png (every
# seed's curve and their mean), OUT/TASK-summary.csv (episode, seeds, mean,
# min, max of the return) and a line per seed in OUT/summary.txt saying
# whether the issue's goal for the task was reached and the wall time.
# Unattended: nohup sh tools/bench-learning.sh halfcheetah hopper > bl.log 2>&1 &
# Not for: tests (tests/clients/test_learning.sh has the fast checks).
build=build
out=docs/results
seeds_opt=
episodes_opt=
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --seeds) seeds_opt=$2; shift 2 ;;
    --episodes) episodes_opt=$2; shift 2 ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) echo "bench-learning: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
tasks=$(echo "${*:-pendulum inverted_pendulum swimmer hopper halfcheetah}" | sed 's/\bplain\b/plain-bare plain-50/')
sim=$build/mbrl-sim
if [ ! -x "$build/mbrld" ] || [ ! -x "$sim" ]; then
    echo "bench-learning: $build/mbrld and $sim are not built (make all)" >&2
    exit 1
fi
mkdir -p "$out" || exit 1
# shellcheck source=tools/daemon-lib.sh
. "$(dirname "$0")/daemon-lib.sh"
daemon_start bench-learning "$build" mbrld-bench-learning

# settings TASK: sets episodes, seeds and args (the mbrl-sim command line).
settings() {
    case $1 in
    pendulum)
        # mbrl-sim's pendulum model and planner (5 x 2 x 64, CEM H 30, N 200,
        # 20 elites, 3 iterations, P 10: ~30 ms per action), the daemon's
        # default training (adaptive minibatch, min 1000 steps)
        episodes=10 seeds="1 2 3 4 5" args="--task pendulum --train-plain" ;;
    inverted_pendulum)
        # 5 random episodes, then CEM H 15, N 300, 5 iterations, P 10
        episodes=10 seeds="1 2 3 4 5" args="--task inverted_pendulum --train-plain" ;;
    swimmer | hopper | halfcheetah)
        # 5 x 3 x 200 ensemble; iCEM (beta 0.25, locomotion) H 15, N 150
        # (150 + 120 + 96 = 366 candidates over 3 iterations), 15 elites, P 5
        # (one particle per member): 27,450 model rows, 5.0 GFLOP per action
        # for the half-cheetah (~40 ms on 2 idle cores, ~1/80 of PETS's
        # 397 GFLOP); the daemon's default training, at most 20 epochs a round
        case $1 in swimmer) episodes=30 ;; hopper) episodes=50 ;; halfcheetah) episodes=100 ;; esac
        seeds="1 2 3"
        args="--task $1 --hidden 200,200,200 --planner icem --noise-beta 0.25 --horizon 15 --population 150 \
--elites 15 --iterations 3 --particles 5 --train-plain --epochs 20" ;;
    plain-bare | plain-50)
        episodes=10 seeds="1"
        args="--task pendulum --reward learned --hidden 200,200,200 --planner cem --horizon 25 --population 400 \
--elites 50 --iterations 5 --particles 20 --train-plain"
        [ "$1" = plain-50 ] && args="$args --epochs 50 --patience 5" ;;
    *) echo "bench-learning: unknown task $1" >&2; return 1 ;;
    esac
    [ -n "$seeds_opt" ] && seeds=$seeds_opt
    [ -n "$episodes_opt" ] && episodes=$episodes_opt
    return 0
}

# goal TASK CSV: one line, the issue's goal for the task on one seed's curve.
goal() {
    awk -F, -v t="$1" '
        NR == 1 { next }
        { n++; r[n] = $4; s[n] = $3; term[n] = $5; w = $12 }
        END {
            if (t == "pendulum" || t ~ /^plain/) {
                m = n >= 3 ? (r[n] + r[n - 1] + r[n - 2]) / 3 : -1e9
                lim = t == "pendulum" ? -200 : -300
                ok = m > lim
                printf "mean of the last 3 of %d episodes %.1f (goal > %d): %s", n, m, lim, (ok ? "reached" : "NOT reached")
            } else if (t == "inverted_pendulum") {
                f = 0
                for (i = 1; i <= n && !f; i++) if (s[i] == 1000 && term[i] == 0) f = i
                ok = f > 0 && f <= 10
                if (f) printf "balances 1000 steps first in episode %d (goal <= 10): %s", f, (ok ? "reached" : "NOT reached")
                else printf "balances 1000 steps in none of %d episodes: NOT reached", n
            } else {
                b30 = -1e9; b = -1e9; be = 0
                for (i = 1; i <= n; i++) { if (r[i] > b) { b = r[i]; be = i } if (i <= 30 && r[i] > b30) b30 = r[i] }
                printf "best return %.1f (episode %d of %d)", b, be, n
                if (t == "halfcheetah") {
                    ok1 = b30 >= 1000
                    ok2 = b >= 3000
                    printf "; best within 30: %.1f (goal >= 1000: %s); within %d (goal >= 3000 within 100: %s)", b30, (ok1 ? "reached" : "NOT reached"), n, (ok2 ? "reached" : "NOT reached")
                }
                if (t == "hopper") {
                    b50 = -1e9
                    for (i = 1; i <= n && i <= 50; i++) if (r[i] > b50) b50 = r[i]
                    ok = b50 >= 1000
                    printf "; within 50: %.1f (goal >= 1000: %s)", b50, (ok ? "reached" : "NOT reached")
                }
            }
            printf "; %.0f s\n", w
        }' "$2"
}

# summary TASK SEEDS: OUT/TASK-summary.csv and OUT/TASK.png over the seeds.
summary() {
    task=$1
    shift
    files=
    for s in $*; do [ -s "$out/$task-s$s.csv" ] && files="$files $out/$task-s$s.csv"; done
    [ -n "$files" ] || return 0
    awk -F, 'FNR == 1 { next }
        { k = $1; n[k]++; v = $4 + 0; sum[k] += v
          if (!(k in lo) || v < lo[k]) lo[k] = v
          if (!(k in hi) || v > hi[k]) hi[k] = v
          if (k > last) last = k }
        END { print "episode,seeds,mean,min,max"
              for (k = 1; k <= last; k++) if (n[k]) printf "%d,%d,%.3f,%.3f,%.3f\n", k, n[k], sum[k] / n[k], lo[k], hi[k] }' \
        $files >"$out/$task-summary.csv"
    if command -v gnuplot >/dev/null 2>&1; then
        {
            echo "set terminal pngcairo size 900,520 enhanced font 'sans,11'"
            echo "set output '$out/$task.png'"
            echo "set datafile separator ','"
            echo "set title 'mbrld: $task, $(echo $files | wc -w) seeds (mean, spread, each seed)' noenhanced"
            echo "set xlabel 'episode'; set ylabel 'return'; set grid; set key outside right top"
            printf "plot '%s' using 1:4:5 with filledcurves lc rgb '#cfe0f3' title 'min-max', " "$out/$task-summary.csv"
            printf "'' using 1:3 with linespoints lw 3 pt 7 lc rgb '#1f4e9c' title 'mean'"
            for f in $files; do
                sd=$(basename "$f" .csv | sed 's/.*-s//')
                printf ", '%s' using 1:4 with lines dt 2 title 'seed %s'" "$f" "$sd"
            done
            echo
        } | gnuplot 2>/dev/null || echo "bench-learning: could not draw $out/$task.png" >&2
    fi
}

rc=0
for task in $tasks; do
    settings "$task" || { rc=2; continue; }
    for seed in $seeds; do
        csv=$out/$task-s$seed.csv
        if [ -s "$csv" ] && [ "$(($(wc -l <"$csv") - 1))" -ge "$episodes" ]; then
            echo "== $task seed $seed: done before ($csv)"
            continue
        fi
        echo "== $task seed $seed: $episodes episodes ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1 /proc/loadavg))"
        # shellcheck disable=SC2086
        "$sim" --url "$url" --model "$task-s$seed" --replace --delete --seed "$seed" --episodes "$episodes" \
            $args --csv "$csv" --picture "$out/$task-s$seed.png" --progress 60 >"$out/$task-s$seed.log" 2>&1 || {
            echo "bench-learning: $task seed $seed failed (log: $out/$task-s$seed.log)" >&2
            rc=1
            continue
        }
        line="$task seed $seed: $(goal "$task" "$csv")"
        echo "$line"
        echo "$line" >>"$out/summary.txt"
    done
    summary "$task" $seeds
done
exit $rc
