#!/bin/sh
# run-demo.sh BUILD [demo|bench-learning]: what `make run` (demo, the
# default) does; bench-learning here is the old single-seed set (`make
# bench-learning` runs tools/bench-learning.sh).
#
#   demo            starts BUILD/mbrld on a temporary data directory and a free
#                   loopback port, runs the pendulum learning loop through it
#                   with progress, says where the learning curve is, and stops
#                   the daemon cleanly (SIGTERM, then waits for it).
#   bench-learning  the same daemon, then every learning curve of
#                   docs/RESULTS.md into docs/results/ (CSV + PNG); takes long.
# Extra arguments after the mode go to mbrl-sim (demo only), e.g.
#   sh tools/run-demo.sh build demo --episodes 6
# Not for: production (the data directory is thrown away at the end).
build=${1:-build}
mode=${2:-demo}
[ $# -ge 2 ] && shift 2 || shift $#

if [ ! -x "$build/mbrld" ] || [ ! -x "$build/mbrl-sim" ]; then
    echo "run-demo: $build/mbrld and $build/mbrl-sim are not built (make all)" >&2
    exit 1
fi
# shellcheck source=tools/daemon-lib.sh
. "$(dirname "$0")/daemon-lib.sh"
daemon_start run-demo "$build" mbrld-demo
export MBRLD_URL=$url

case $mode in
demo)
    echo "mbrld is listening on $url (data in $tmp, thrown away at the end)."
    echo "Watch a pendulum learn to swing up through it: one episode of random"
    echo "torques, then model-predictive control with a learned model, retrained"
    echo "after every episode. A return near -150 is a swing-up; random is ~ -1200."
    echo
    "$build/mbrl-sim" --task pendulum --out "$build/mbrl-out" "$@"
    rc=$?
    echo
    if [ $rc = 0 ]; then
        echo "The daemon stops now. To keep going, run your own ($build/mbrld) and talk"
        echo "to it with clients/sh/mbrl or the C client (README.md, \"Clients\")."
    fi
    exit $rc
    ;;
bench-learning)
    out=docs/results
    mkdir -p "$out"
    rc=0
    # Each line: the command docs/RESULTS.md shows (one seed each; see there).
    "$build/mbrl-sim" --task pendulum --episodes 10 --seed 1 --out "$out" --replace || rc=1
    "$build/mbrl-sim" --task cartpole_swingup --episodes 15 --seed 1 --out "$out" --replace || rc=1
    "$build/mbrl-sim" --task inverted_pendulum --episodes 10 --seed 1 --out "$out" --replace || rc=1
    "$build/mbrl-sim" --task halfcheetah --episodes 8 --steps 300 --seed 1 --out "$out" --replace || rc=1
    for f in "$out"/*.csv; do
        echo "== $f"
        cat "$f"
    done
    exit $rc
    ;;
*)
    echo "run-demo: unknown mode '$mode' (demo, bench-learning)" >&2
    exit 2
    ;;
esac
