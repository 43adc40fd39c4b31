#!/bin/sh
# openapi-lint.sh: lints docs/openapi.json with Redocly's CLI (the
# recommended rules, docs/redocly.yaml) and prints every problem.
#   sh tools/openapi-lint.sh     exit 0 clean, 1 problems, 3 the CLI is not here
# The CLI (@redocly/cli, pinned below) is installed from the npm registry
# into tools/.npm/ (git-ignored) on first use; without node/npm or a
# reachable registry it says so and exits 3, so callers can skip.
# Not for: whether every route is documented (tests/server/test_routes.c).
root=$(cd "$(dirname "$0")/.." && pwd)
version=2.77.0
dir=$root/tools/.npm
cli=$dir/node_modules/.bin/redocly
export REDOCLY_SUPPRESS_UPDATE_NOTICE=true REDOCLY_TELEMETRY=off NO_UPDATE_NOTIFIER=1
if [ ! -x "$cli" ] || [ "$(cat "$dir/version" 2>/dev/null)" != "$version" ]; then
    for c in node npm; do
        command -v $c >/dev/null 2>&1 || { echo "no $c here: cannot install @redocly/cli"; exit 3; }
    done
    mkdir -p "$dir"
    if ! timeout 300 npm install --prefix "$dir" --no-audit --no-fund --no-save --fetch-retries=1 \
            --fetch-timeout=30000 "@redocly/cli@$version" >"$dir/install.log" 2>&1 || [ ! -x "$cli" ]; then
        echo "npm could not install @redocly/cli@$version (registry unreachable?): $dir/install.log"
        tail -n 3 "$dir/install.log"
        exit 3
    fi
    echo "$version" >"$dir/version"
fi
out=$(cd "$root" && "$cli" lint --config docs/redocly.yaml --format=json docs/openapi.json 2>/dev/null)
rc=$?
# the totals and one line per problem, without needing jq
summary=$(printf '%s' "$out" | node -e '
let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
  let r; try { r = JSON.parse(s); } catch (e) { console.log("unreadable lint output"); process.exit(2); }
  for (const p of r.problems) {
    const loc = (p.location[0] || {}); const at = loc.start ? loc.start.line : "?";
    console.log(`${p.severity} ${p.ruleId} docs/openapi.json:${at} ${loc.pointer || ""}: ${p.message}`);
  }
  console.log(`${r.totals.errors} errors, ${r.totals.warnings} warnings`);
  process.exit(r.totals.errors + r.totals.warnings > 0 ? 1 : 0);
});')
lrc=$?
printf '%s\n' "$summary"
[ $rc -gt 1 ] && { echo "redocly lint failed to run (exit $rc)"; exit 1; }
exit $lrc
