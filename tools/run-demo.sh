#!/bin/sh
# run-demo.sh BUILD: what `make run` does. Starts mbrld on a temporary data
# directory, runs the pendulum learning loop through it with progress, says
# where the learning curve is, and stops the daemon cleanly.
build=${1:-build}
if [ ! -x "$build/mbrld" ] || [ ! -x "$build/mbrl-sim" ]; then
    echo "make run: the daemon ($build/mbrld) and the simulator client ($build/mbrl-sim)"
    echo "are not built yet in this checkout; nothing to run."
    exit 1
fi
