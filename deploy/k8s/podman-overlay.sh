#!/bin/sh
# podman-overlay.sh: the manifests of deploy/k8s/, changed only where Debian
# 12's podman (4.3) needs it to play them with `podman kube play --network
# host` (tests/deploy/test_kube.sh; deploy/README.md):
#
#   sh deploy/k8s/podman-overlay.sh IMAGE SECRETS_DIR TRAINER_PORT PLANNER_PORT CLAIM FILE... >play.yaml
#
# - StatefulSet -> Deployment (podman has no StatefulSet): serviceName
#   dropped, the volumeClaimTemplate becomes a PersistentVolumeClaim named
#   CLAIM (a podman named volume) and a volume of the pod;
# - Secret volumes -> hostPath files SECRETS_DIR/<secretName>/<key> (podman
#   4.3 writes a Secret's data still base64-encoded and ignores subPath);
# - one network (the host's), no Services: the trainer listens on
#   TRAINER_PORT, a planner on PLANNER_PORT and follows
#   http://127.0.0.1:TRAINER_PORT, one planner replica (one port each);
#   no container ports (podman refuses port mappings on the host network);
#   the probes' named port becomes the number (podman runs liveness probes
#   as health checks, which cannot resolve names);
# - image mbrld:latest -> IMAGE;
# - kinds podman does not play (Service, HorizontalPodAutoscaler,
#   PodDisruptionBudget, NetworkPolicy, Secret) are left out.
# Everything else (args, probes' paths, security contexts, mounts,
# resources) is played as written.
[ $# -ge 6 ] || { echo "usage: podman-overlay.sh IMAGE SECRETS_DIR TRAINER_PORT PLANNER_PORT CLAIM FILE..." >&2; exit 2; }
image=$1 secrets=$2 tport=$3 pport=$4 claim=$5
shift 5
awk -v image="$image" -v secrets="$secrets" -v tport="$tport" -v pport="$pport" -v claim="$claim" '
function flush(   i, keep, port, line, in_vct, pvc, n) {
    if (nl == 0) return
    keep = (kind == "Deployment" || kind == "StatefulSet" || kind == "Pod" ||
            kind == "PersistentVolumeClaim" || kind == "ConfigMap")
    if (!keep) { nl = 0; return }
    port = (name == "mbrld-trainer") ? tport : pport
    in_vct = 0; n = 0
    out = out "---\n"
    for (i = 1; i <= nl; i++) {
        line = doc[i]
        if (kind == "StatefulSet") {
            if (line ~ /^kind: StatefulSet/) line = "kind: Deployment"
            if (line ~ /^  serviceName:/) continue
            if (line ~ /^  volumeClaimTemplates:/) {
                out = out "        - {name: data, persistentVolumeClaim: {claimName: " claim "}}\n"
                in_vct = 1; continue
            }
            if (in_vct) {
                # "    - metadata: {name: data}" then "      spec:" and its children
                if (line ~ /^      spec:/ || line ~ /^        /) pvc = pvc substr(line, 7) "\n"
                continue
            }
        }
        gsub(/image: mbrld:latest/, "image: " image, line)
        gsub(/0\.0\.0\.0:8080/, "0.0.0.0:" port, line)
        if (line ~ /^ +ports: \[\{containerPort:/) continue
        gsub(/port: http}/, "port: " port "}", line)
        gsub(/http:\/\/mbrld-trainer:8080/, "http://127.0.0.1:" tport, line)
        gsub(/, subPath: [^,}]*/, "", line)
        if (line ~ /^  replicas: [0-9]+/) line = "  replicas: 1"
        if (match(line, /secret: \{secretName: [^,}]*/)) {
            sname = substr(line, RSTART + 21, RLENGTH - 21)
            if (match(line, /items: \[\{key: [^,}]*/)) key = substr(line, RSTART + 14, RLENGTH - 14)
            sub(/secret: \{.*\]\}\}/, "hostPath: {path: " secrets "/" sname "/" key ", type: File}}", line)
        }
        out = out line "\n"
    }
    if (pvc != "")
        out = out "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: " claim "}\n" pvc
    pvc = ""; nl = 0
}
FNR == 1 { flush(); kind = ""; name = "" }
/^---/ { flush(); kind = ""; name = ""; next }
/^#/ && nl == 0 { next }
{
    doc[++nl] = $0
    if ($0 ~ /^kind: /) kind = $2
    if ($0 ~ /^  name: / && name == "" && meta) name = $2
    meta = ($0 ~ /^metadata:/) ? 1 : (($0 ~ /^[a-z]/) ? 0 : meta)
}
END { flush(); printf "%s", out }
' "$@"
