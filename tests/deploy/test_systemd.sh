#!/bin/sh
# test_systemd.sh: deploy/systemd/mbrld.service (no systemd runs as PID 1
# here, so the unit is checked, not started): `systemd-analyze verify`, its
# `systemd-analyze security` exposure at most the figure deploy/README.md
# states, the sysusers line; and mbrld traced (strace -f) through a session
# (create, post, train, act, snapshot, export, import, SIGTERM): every
# system call it makes is allowed by the unit's SystemCallFilter, every
# socket is of an allowed family, and it writes nothing outside its data
# directory (ProtectSystem=strict, ReadWritePaths). Skipped, saying why,
# without systemd-analyze; the trace without strace.
# Prints "N passed, N failed" last.
. tests/deploy/common.sh
unit=deploy/systemd/mbrld.service
bin=${MBRLD_BIN:-build/mbrld}
command -v systemd-analyze >/dev/null 2>&1 || skip_all "no systemd-analyze here"
[ -x "$bin" ] || { bad "no daemon at $bin (make all)"; finish_counts; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbrld-systemd.XXXXXX")
pid=
finish() {
    [ -n "$pid" ] && kill -TERM $(pgrep -P "$pid") "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap finish EXIT
trap "exit 1" INT TERM HUP PIPE

# verify wants ExecStart's binary to exist: point it at the one just built
abs=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
sed "s#/usr/local/bin/mbrld#$abs#g" "$unit" >"$tmp/mbrld.service"
check "systemd-analyze verify" quiet systemd-analyze verify "$tmp/mbrld.service"
systemd-analyze verify "$tmp/mbrld.service" 2>&1 | sed 's/^/      /'
score=$(systemd-analyze security --offline=yes "$tmp/mbrld.service" 2>/dev/null |
    sed -n 's/.*Overall exposure level for mbrld.service: \([0-9.]*\).*/\1/p')
stated=$(sed -n 's/.*`systemd-analyze security` exposure of the unit: \([0-9.]*\).*/\1/p' deploy/README.md | head -n 1)
if [ -n "$score" ] && [ -n "$stated" ] && awk -v a="$score" -v b="$stated" 'BEGIN { exit !(a <= b) }'; then
    ok "systemd-analyze security: $score, at most the $stated deploy/README.md states"
else
    bad "systemd-analyze security: '$score', deploy/README.md states '$stated'"
fi
if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers --dry-run "$(pwd)/deploy/systemd/mbrld.sysusers" >"$tmp/out" 2>&1
    check "the sysusers line makes user mbrld" grep -q "Creating user 'mbrld'" "$tmp/out"
fi
grep -q '^User=mbrld$' "$unit" && grep -q '^CapabilityBoundingSet=$' "$unit" && grep -q '^NoNewPrivileges=yes$' "$unit" &&
    grep -q '^ProtectSystem=strict$' "$unit" && grep -q '^ReadWritePaths=/var/lib/mbrld$' "$unit" &&
    grep -q '^PrivateTmp=yes$' "$unit" && grep -q '^LimitNOFILE=' "$unit"
check "User, no capabilities, NoNewPrivileges, ProtectSystem=strict, ReadWritePaths, PrivateTmp, LimitNOFILE" test $? = 0

command -v strace >/dev/null 2>&1 || { echo "skip  the syscall trace: no strace here"; finish_counts; exit $?; }
# the unit's allow list: SystemCallFilter lines, groups expanded
expand() {
    systemd-analyze syscall-filter "$1" 2>/dev/null | sed '1d; s/^ *//; /^#/d; /^$/d' | while read -r s; do
        case $s in @*) expand "$s" ;; *) echo "$s" ;; esac
    done
}
: >"$tmp/allow"
for f in $(sed -n 's/^SystemCallFilter=//p' "$unit"); do
    case $f in
    "~"*) expand "${f#\~}" | sort -u >"$tmp/deny"; sort -u "$tmp/allow" | comm -23 - "$tmp/deny" >"$tmp/a2"; mv "$tmp/a2" "$tmp/allow" ;;
    *) expand "$f" >>"$tmp/allow" ;;
    esac
done
sort -u -o "$tmp/allow" "$tmp/allow"
[ -s "$tmp/allow" ] && ok "the allow list: $(wc -l <"$tmp/allow") system calls" || bad "the allow list is empty"

strace -f -qq -o "$tmp/trace" "$bin" --listen 127.0.0.1:0 --port-file "$tmp/port" --data-dir "$tmp/data" \
    --log-level warn 2>"$tmp/log" &
pid=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
MBRLD_URL=http://127.0.0.1:$(cat "$tmp/port")
export MBRLD_URL
wait_url "$MBRLD_URL/healthz" 30
m="sh clients/sh/mbrl"
rows=$(jq -cn '[range(40) | (. / 40) as $x | ((. % 5) / 2 - 1) as $u |
    {obs: [$x, 0], action: [$u], reward: (-$x * $x), next_obs: [($x + 0.1 * $u), $u], terminated: false, truncated: false}]')
{
    $m create '{"name": "sd", "obs_dim": 2, "act_dim": 1, "act_low": [-1], "act_high": [1], "ensemble": {"members": 2, "hidden": [16]}, "planner": {"method": "cem", "horizon": 5, "population": 16, "elites": 4, "iterations": 2, "particles": 2}}' &&
        $m post sd "$rows" --client sd --seq 1 && $m train sd --epochs 5 --wait && $m act sd '[0.5, 0]' --session s &&
        $m predict sd '[0.5, 0]' '[[1], [0]]' && $m snapshot sd && $m export sd "$tmp/sd.mbs" &&
        $m import sd2 "$tmp/sd.mbs" && $m metrics && $m delete sd2
} >"$tmp/session.log" 2>&1
check "a session through the traced daemon" test $? = 0
# the daemon is strace's child: SIGTERM to it (strace would only detach)
kill -TERM $(pgrep -P "$pid")
wait "$pid" # strace exits with its command's status
rc=$?
pid=
check "SIGTERM: exit 0 under the trace" test $rc = 0
# "PID call(args) = ret", also "<... call resumed>"
sed -n 's/^[0-9]* *\([a-z_0-9]*\)(.*/\1/p; s/^[0-9]* *<\.\.\. \([a-z_0-9]*\) resumed>.*/\1/p' "$tmp/trace" | sort -u >"$tmp/used"
outside=$(comm -23 "$tmp/used" "$tmp/allow" | tr '\n' ' ')
[ -s "$tmp/used" ] && [ -z "$outside" ] && ok "all $(wc -l <"$tmp/used") system calls mbrld made are in the filter" ||
    bad "system calls outside the filter: ${outside:-none traced}"
fams=$(sed -n 's/^[0-9]* *socket(\(AF_[A-Z0-9]*\).*/\1/p' "$tmp/trace" | sort -u | tr '\n' ' ')
others=$(printf '%s\n' $fams | grep -v -x -e AF_INET -e AF_INET6 -e AF_UNIX | tr '\n' ' ')
[ -n "$fams" ] && [ -z "$others" ] && ok "sockets of allowed families only ($fams)" || bad "socket families: $fams"
# writes: opens for writing, creations, renames, removals. Absolute paths
# must be under the data directory; a relative one must hang off a directory
# fd (the data directory's), never the working directory (/ under systemd).
grep -E '(open(at)?\(.*O_(WRONLY|RDWR|CREAT)|mkdir(at)?\(|rename(at2?)?\(|unlink(at)?\(|rmdir\()' "$tmp/trace" |
    awk -v data="$tmp/data" -v port="$tmp/port" '{ # port: this test asks for a --port-file
        call = $2; sub(/\(.*/, "", call)
        n = split($0, q, "\"")
        for (i = 2; i <= n; i += 2) {
            p = q[i]; pre = q[i - 1]
            if (p ~ /^\//) { if (index(p, data) != 1 && index(p, port) != 1) print "outside: " p }
            else if (pre ~ /AT_FDCWD, $/ || call ~ /^(mkdir|rename|unlink|rmdir|open)$/) print "cwd-relative: " p
            else relative++
        }
        total += (n - 1) / 2
    } END { print "total " total + 0 " relative " relative + 0 }' >"$tmp/written"
stray=$(grep -v '^total' "$tmp/written" | tr '\n' ' ')
counts=$(grep '^total' "$tmp/written")
[ -z "$stray" ] && grep -q '^total [1-9]' "$tmp/written" && ok "writes only under its data directory ($counts)" ||
    bad "writes outside the data directory: ${stray:-none traced}"
finish_counts
