#!/bin/sh
# test_kube.sh: deploy/k8s/ run for real with podman: the image built once
# (tools/podman.sh), the manifests played with `podman kube play --network
# host` through deploy/k8s/podman-overlay.sh (only what podman 4.3 needs:
# StatefulSet as a Deployment, Secret volumes as files, one port per pod).
# Through the trainer: a model created, rows posted, trained, an action
# planned; the trainer's liveness probe as podman's health check; its data
# kept in the persistent volume across `kube down` and a new `kube play`.
# With a daemon that has --follow: one planner (a follower) plans with the
# trainer's version and refuses writes with 409 read_only. Also the
# manifests' cross-references (selectors, ports, Secrets, the HPA's and
# PDB's targets) when Python has yaml. Skipped, saying why, without
# podman. Prints "N passed, N failed" last. `make kube-test` runs it alone.
# Not for: HPA, PDB, NetworkPolicy behaviour (they need a cluster).
. tests/deploy/common.sh
. tools/podman.sh

# the manifests' cross-references, statically (no cluster here)
if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
    python3 - deploy/k8s/*.yaml <<'EOF' >"${TMPDIR:-/tmp}/kube-static.$$" 2>&1
import sys, yaml
docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]
by = {}
for d in docs:
    by.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
bad = []
def pods():
    for kind in ("StatefulSet", "Deployment"):
        for name, d in by.get(kind, {}).items():
            yield kind, name, d["spec"]["template"]
for kind, name, t in pods():
    labels = t["metadata"]["labels"]
    sel = by[kind][name]["spec"]["selector"]["matchLabels"]
    if any(labels.get(k) != v for k, v in sel.items()): bad.append("%s %s: selector does not match its pods" % (kind, name))
    spec = t["spec"]
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    claims = {c["metadata"]["name"] for c in by[kind][name]["spec"].get("volumeClaimTemplates", [])}
    for c in spec["containers"]:
        ports = {p.get("name") for p in c.get("ports", [])}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            p = c.get(probe, {}).get("httpGet")
            if p and isinstance(p["port"], str) and p["port"] not in ports: bad.append("%s: %s port %s unnamed" % (name, probe, p["port"]))
        for m in c.get("volumeMounts", []):
            if m["name"] not in vols and m["name"] not in claims: bad.append("%s: mount %s has no volume" % (name, m["name"]))
            v = vols.get(m["name"], {})
            if "secret" in v:
                s = by.get("Secret", {}).get(v["secret"]["secretName"])
                keys = [i["key"] for i in v["secret"].get("items", [])]
                if not s: bad.append("%s: no Secret %s" % (name, v["secret"]["secretName"]))
                elif any(k not in s.get("stringData", s.get("data", {})) for k in keys): bad.append("%s: Secret %s lacks %s" % (name, s["metadata"]["name"], keys))
        if c.get("securityContext", {}).get("allowPrivilegeEscalation") is not False: bad.append("%s: privilege escalation allowed" % name)
    if not spec.get("securityContext", {}).get("runAsNonRoot"): bad.append("%s: not runAsNonRoot" % name)
    if kind == "StatefulSet" and by[kind][name]["spec"]["serviceName"] not in by.get("Service", {}): bad.append("%s: no governing Service" % name)
for name, s in by.get("Service", {}).items():
    sel = s["spec"]["selector"]
    targets = [t for _, _, t in pods() if all(t["metadata"]["labels"].get(k) == v for k, v in sel.items())]
    if not targets: bad.append("Service %s selects no pods" % name)
    for p in s["spec"]["ports"]:
        if isinstance(p.get("targetPort"), str) and not any(p["targetPort"] in {q.get("name") for c in t["spec"]["containers"] for q in c.get("ports", [])} for t in targets):
            bad.append("Service %s: targetPort %s named by no container" % (name, p["targetPort"]))
for name, h in by.get("HorizontalPodAutoscaler", {}).items():
    r = h["spec"]["scaleTargetRef"]
    if r["name"] not in by.get(r["kind"], {}): bad.append("HPA %s: no %s %s" % (name, r["kind"], r["name"]))
    d = by[r["kind"]].get(r["name"])
    if d and not all("requests" in c.get("resources", {}) and "cpu" in c["resources"]["requests"] for c in d["spec"]["template"]["spec"]["containers"]):
        bad.append("HPA %s: its target has no cpu request" % name)
for kind in ("PodDisruptionBudget", "NetworkPolicy"):
    for name, p in by.get(kind, {}).items():
        sel = (p["spec"].get("selector") or p["spec"].get("podSelector"))["matchLabels"]
        if not any(all(t["metadata"]["labels"].get(k) == v for k, v in sel.items()) for _, _, t in pods()): bad.append("%s %s selects no pods" % (kind, name))
print("\n".join(bad) if bad else "%d documents, %s" % (len(docs), ", ".join(sorted("%s %d" % (k, len(v)) for k, v in by.items()))))
sys.exit(1 if bad else 0)
EOF
    if [ $? = 0 ]; then ok "manifests hold together: $(cat "${TMPDIR:-/tmp}/kube-static.$$")"; else
        bad "manifests: $(cat "${TMPDIR:-/tmp}/kube-static.$$")"; fi
    rm -f "${TMPDIR:-/tmp}/kube-static.$$"
else
    echo "skip  the manifests' static check: no python3 with yaml"
fi

why=$(pm_check) || { echo "skip: $why"; finish_counts; exit $?; }
pm_env
if [ "${MBRLD_IMAGE_BUILT:-}" = 1 ] && podman image exists "$MBRLD_IMAGE"; then
    ok "image given: $MBRLD_IMAGE"
else
    out=$(pm_image)
    case $? in
    0) ok "image built: $MBRLD_IMAGE" ;;
    2) echo "skip: no base image: $out"; finish_counts; exit $? ;;
    *) echo "$out"; bad "podman build"; finish_counts; exit 1 ;;
    esac
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mbrld-kube.XXXXXX")
chmod 755 "$tmp"
claim=mbrld-kube-data-$$
finish() {
    [ -f "$tmp/play.yaml" ] && podman kube down "$tmp/play.yaml" >/dev/null 2>&1
    podman volume rm -f "$claim" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap finish EXIT
trap "exit 1" INT TERM HUP PIPE
tport=$(free_port)
pport=$(free_port)
while [ "$pport" = "$tport" ]; do pport=$(free_port); done
trainer=http://127.0.0.1:$tport
planner=http://127.0.0.1:$pport

# the Secrets' files, as the overlay mounts them: hashes, and the planners' read token
mkdir -p "$tmp/secrets/mbrld-tokens" "$tmp/secrets/mbrld-follow-token"
admin=$(make_tokens "$tmp/secrets/mbrld-tokens/mbrld-tokens" read,act,write,admin kube-test)
follow=$(make_tokens "$tmp/secrets/mbrld-tokens/mbrld-tokens" read planners)
printf '%s\n' "$follow" >"$tmp/secrets/mbrld-follow-token/token"
chown 10001:10001 "$tmp/secrets/mbrld-follow-token/token" 2>/dev/null
chmod 400 "$tmp/secrets/mbrld-follow-token/token"
chmod -R a+rX "$tmp/secrets/mbrld-tokens"

files=deploy/k8s/mbrld-trainer.yaml
if podman run --rm "$MBRLD_IMAGE" --help 2>/dev/null | grep -q -- '--follow '; then
    follower=1
    files="$files deploy/k8s/mbrld-planner.yaml"
else
    follower=0
    echo "skip  the planner Deployment: this mbrld has no --follow yet (it comes with branch i15-replicas)"
fi
# the kinds podman cannot play are handed to the overlay too: it leaves them out
sh deploy/k8s/podman-overlay.sh "$MBRLD_IMAGE" "$tmp/secrets" "$tport" "$pport" "$claim" \
    $files deploy/k8s/mbrld-network.yaml deploy/k8s/mbrld-secret.yaml >"$tmp/play.yaml"
play() { podman kube play --network host "$tmp/play.yaml" >"$tmp/play.log" 2>&1 || { cat "$tmp/play.log"; return 1; }; }
check "podman kube play (trainer$([ $follower = 1 ] && echo ' and one planner'))" play
check "trainer ready (/readyz)" wait_url "$trainer/readyz" 60
tc=mbrld-trainer-pod-0-mbrld
uid=$(podman exec "$tc" id -u 2>/dev/null)
[ "$uid" = 10001 ] && ok "trainer runs as uid 10001" || bad "trainer runs as uid '$uid'"
# podman runs a liveness probe as a health check (curl inside the container)
check "the trainer's liveness probe (podman healthcheck run)" probe "$tc"
podman exec "$tc" sh -c 'touch /usr/local/bin/x' >"$tmp/out" 2>&1
check "read-only root filesystem" grep -q "Read-only file system" "$tmp/out"

mbrl() { MBRLD_TOKEN=$admin sh clients/sh/mbrl "$@"; }
spec='{"name": "kube", "obs_dim": 2, "act_dim": 1, "act_low": [-1], "act_high": [1], "ensemble": {"members": 2, "hidden": [16]}, "planner": {"method": "cem", "horizon": 5, "population": 16, "elites": 4, "iterations": 2, "particles": 2}}'
check "create a model through the trainer" quiet mbrl --url "$trainer" create "$spec"
rows=$(jq -cn '[range(40) | (. / 40) as $x | ((. % 5) / 2 - 1) as $u |
    {obs: [$x, 0], action: [$u], reward: (-$x * $x), next_obs: [($x + 0.1 * $u), $u], terminated: false, truncated: false}]')
check "post 40 rows" quiet mbrl --url "$trainer" post kube "$rows" --client kube-test --seq 1
mbrl --url "$trainer" --raw train kube --epochs 5 --wait >"$tmp/job" 2>&1
check "train (wait): version 1" quiet jq -e '.state == "done" and .version == 1' "$tmp/job"
mbrl --url "$trainer" --raw act kube '[0.5, 0]' >"$tmp/act" 2>&1
check "the trainer plans" quiet jq -e '.source == "planner" and .version == 1' "$tmp/act"

if [ $follower = 1 ]; then
    check "planner ready (/readyz: its first pull done)" wait_url "$planner/readyz" 60
    check "the planner's liveness probe (podman healthcheck run)" probe mbrld-planner-pod-0-mbrld
    i=0
    until mbrl --url "$planner" --raw act kube '[0.5, 0]' >"$tmp/act" 2>/dev/null &&
        jq -e '.source == "planner" and .version == 1' "$tmp/act" >/dev/null; do
        i=$((i + 1))
        [ $i -ge 60 ] && break
        sleep 0.5
    done
    check "the planner plans with the trainer's version 1" quiet jq -e '.source == "planner" and .version == 1' "$tmp/act"
    mbrl --url "$planner" post kube "$rows" >/dev/null 2>"$tmp/err"
    check "a write to the planner: 409 read_only" grep -q "HTTP 409 read_only" "$tmp/err"
    mbrl --url "$trainer" --raw train kube --epochs 3 --wait >/dev/null 2>&1
    i=0
    until mbrl --url "$planner" --raw act kube '[0.5, 0]' >"$tmp/act" 2>/dev/null &&
        jq -e '.version == 2' "$tmp/act" >/dev/null; do
        i=$((i + 1))
        [ $i -ge 60 ] && break
        sleep 0.5
    done
    check "the planner picks up version 2 without a restart" quiet jq -e '.version == 2' "$tmp/act"
    curl -fsS -H "Authorization: Bearer $admin" "$planner/metrics" >"$tmp/metrics" 2>/dev/null
    check "the planner's /metrics has its version lag" grep -q '^mbrld_follow_version_lag' "$tmp/metrics"
fi

# the persistent volume: down (SIGTERM), play again, the model is back
check "podman kube down" quiet podman kube down "$tmp/play.yaml"
check "the claim's volume outlives the pods" podman volume exists "$claim"
# podman 4.3 refuses a PersistentVolumeClaim whose volume exists: play the pods alone
awk '/^---/ { if (doc !~ /\nkind: PersistentVolumeClaim\n/) printf "%s", doc; doc = "" } { doc = doc $0 "\n" }
    END { if (doc !~ /\nkind: PersistentVolumeClaim\n/) printf "%s", doc }' "$tmp/play.yaml" >"$tmp/replay.yaml"
check "podman kube play again (the claim's volume kept)" quiet podman kube play --network host "$tmp/replay.yaml"
check "trainer ready again" wait_url "$trainer/readyz" 60
mbrl --url "$trainer" --raw get kube >"$tmp/get" 2>&1
check "the model came back from the volume (40 rows)" quiet jq -e '.buffer_size == 40 and .version >= 1' "$tmp/get"
if podman logs "$tc" 2>&1 | grep -qF -- "$admin"; then bad "a token in the trainer's log"; else ok "no token in the trainer's log"; fi
finish_counts
