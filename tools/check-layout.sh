#!/bin/sh
# check-layout.sh: fails when a file includes across the rooms' rules
# (core/README.md):
#   core/base   includes nothing of core but base
#   core/nn     base, nn
#   core/learn  base, nn, learn, plan (one way: plan never includes learn)
#   core/plan   base, nn, plan
#   core/store  base, nn, learn, store
#   core/*      never server/, clients/, microhttpd.h or cJSON
#   store/*     is included by server/ (and tests, bench) only
#   server/     never includes clients/; clients/ never include server/
#               (but the shared cJSON helper json_floats.h)
#   server/     data flows handlers -> registry (model*.c) -> store, job:
#               store.* and job.* never include the registry (model*.h,
#               app.h) nor each other; http.* never include job.h, store.h
#               or model*.h (it knows a generic parked answer, routes.h)
# Every room must have a README.md. Prints one line per broken rule and
# "N passed, N failed" last (tests/run.sh reads it).
# Usage: tools/check-layout.sh [SOURCE_ROOT]
cd "${1:-$(dirname "$0")/..}" || exit 2
pass=0
fail=0
bad() { fail=$((fail + 1)); echo "FAIL  $1"; }

# The quoted includes of a file, one per line.
includes() { sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$1"; }

allowed_for() { # room -> rooms it may include
    case $1 in
    base) echo "base" ;;
    nn) echo "base nn" ;;
    learn) echo "base nn learn plan" ;;
    plan) echo "base nn plan" ;;
    store) echo "base nn learn store" ;;
    esac
}

rooms="base nn learn plan store"
for r in $rooms; do
    if [ -f "core/$r/README.md" ]; then pass=$((pass + 1)); else bad "core/$r has no README.md"; fi
done
for f in core/*.c core/*.h; do
    [ -e "$f" ] && bad "$f: every core file lives in a room (core/ROOM/)"
done

for r in $rooms; do
    ok_rooms=$(allowed_for "$r")
    for f in core/"$r"/*.c core/"$r"/*.h; do
        [ -f "$f" ] || continue
        n_bad=0
        for inc in $(includes "$f"); do
            case $inc in
            */*) target=${inc%%/*} ;;
            *) target=$r ;; # same folder
            esac
            case " $ok_rooms " in
            *" $target "*) ;;
            *) bad "$f includes \"$inc\" ($r may include: $ok_rooms)"; n_bad=1 ;;
            esac
        done
        if grep -Eq '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(microhttpd|cjson/|cJSON)' "$f"; then
            bad "$f includes an HTTP or JSON header (core has neither)"
            n_bad=1
        fi
        [ $n_bad = 0 ] && pass=$((pass + 1))
    done
done

# store/ is the server's: nothing in clients/ (nor core outside store) includes it
for f in $(find clients core -name '*.[ch]' ! -path 'core/store/*'); do
    if includes "$f" | grep -q '^store/'; then bad "$f includes store/ (only server/ may)"; else pass=$((pass + 1)); fi
done
for f in $(find server -name '*.[ch]'); do
    if includes "$f" | grep -Eq '^(lib|sim)/|mbrl_client'; then bad "$f includes a client header"; else pass=$((pass + 1)); fi
done
for f in $(find clients -name '*.[ch]'); do
    if includes "$f" | grep -Eq '^(app|model|store|job|http|routes|handlers)\.h$'; then
        bad "$f includes a server header"
    else
        pass=$((pass + 1))
    fi
done

# one-way flow in server/ (store and job may not include app.h either: it
# brings the registry with it)
flow() { # file, forbidden-include regex, why
    [ -f "$1" ] || return 0
    if includes "$1" | grep -Eq "$2"; then bad "$1 includes $(includes "$1" | grep -E "$2" | tr '\n' ' ')($3)"
    else pass=$((pass + 1)); fi
}
for f in server/store.c server/store.h; do
    flow "$f" '^(app|model|model_persist|job|http|routes|handlers)\.h$' "the store is handed what to persist"
done
for f in server/job.c server/job.h; do
    flow "$f" '^(app|model|model_persist|store|http|routes|handlers)\.h$' "a job knows nothing of models"
done
for f in server/http.c server/http.h; do
    flow "$f" '^(job|store|model|model_persist)\.h$' "HTTP glue knows no training or persistence"
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
