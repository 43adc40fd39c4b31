#!/bin/sh
# podman.sh: the project's image with Debian's podman, on machines with no
# Docker engine and no image registry (deploy/README.md "Podman").
#
#   sh tools/podman.sh check   exit 0 when podman and runc are here (else say why, exit 1)
#   sh tools/podman.sh image   build the image (once per source tree: podman's
#                              layer cache) and print its name
#
# Sourced by tests/deploy/test_*.sh for pm_check, pm_env, pm_image.
# --format docker: the OCI format has no HEALTHCHECK (podman drops it).
# State lives in deploy/podman/ (git-ignored): containers.conf and, while the
# base image is made, a Debian rootfs. The base image docker.io/library/debian:12-slim
# is made locally with debootstrap (Debian's default archive) when podman
# does not have it, since no registry is reachable; the build's apt-get
# reaches Debian's archive through --network host.
# MBRLD_IMAGE names the image (default: localhost/mbrld:t-<hash of this
# tree's path>, so worktrees on one machine do not overwrite each other).
# Not for: running or testing the image (tests/deploy/test_container.sh,
# test_kube.sh). Each build leaves its build stage behind as an untagged
# image; they share the cached apt layers, so one costs about 7 MB.

pm_root=$(cd "$(dirname "$0")/.." 2>/dev/null && pwd)
[ -f "$pm_root/Dockerfile" ] || pm_root=$(pwd)
pm_dir=$pm_root/deploy/podman
pm_base=docker.io/library/debian:12-slim
: "${MBRLD_IMAGE:=localhost/mbrld:t-$(printf %s "$pm_root" | cksum | cut -d' ' -f1)}"

# pm_check: podman and runc present (prints why not)
pm_check() {
    for c in podman runc; do
        if ! command -v $c >/dev/null 2>&1; then
            echo "no $c here (apt-get install -y podman runc debootstrap)"
            return 1
        fi
    done
    return 0
}

# pm_env: podman's defaults fail on these machines (crun with a cgroup v1
# hybrid, default rlimits): runc, the cgroupfs manager, no default ulimits.
pm_env() {
    mkdir -p "$pm_dir"
    printf '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n' \
        >"$pm_dir/containers.conf"
    CONTAINERS_CONF=$pm_dir/containers.conf
    export CONTAINERS_CONF
}

# pm_base_image: the FROM image, made from Debian's archive when missing
pm_base_image() {
    podman image exists "$pm_base" && return 0
    command -v debootstrap >/dev/null 2>&1 || { echo "no debootstrap here to make $pm_base"; return 1; }
    echo "making $pm_base with debootstrap (about 30 s, 200 MB)" >&2
    rm -rf "$pm_dir/rootfs"
    if ! debootstrap --variant=minbase bookworm "$pm_dir/rootfs" >"$pm_dir/debootstrap.log" 2>&1; then
        echo "debootstrap failed (Debian's archive unreachable?): $pm_dir/debootstrap.log"
        rm -rf "$pm_dir/rootfs"
        return 1
    fi
    tar -C "$pm_dir/rootfs" -c . | podman import - "$pm_base" >/dev/null
    rc=$?
    rm -rf "$pm_dir/rootfs"
    return $rc
}

# pm_image: builds $MBRLD_IMAGE from the Dockerfile (log in deploy/podman/build.log)
pm_image() {
    pm_env
    pm_base_image || return 2
    if ! podman build --pull=never --network host --format docker -t "$MBRLD_IMAGE" "$pm_root" >"$pm_dir/build.log" 2>&1; then
        echo "podman build failed: $pm_dir/build.log"
        tail -n 20 "$pm_dir/build.log"
        return 1
    fi
    return 0
}

case "${0##*/}" in
podman.sh)
    case "$1" in
    check) pm_check ;;
    image) pm_check && pm_image && echo "$MBRLD_IMAGE" ;;
    *) echo "usage: sh tools/podman.sh check|image" >&2; exit 2 ;;
    esac
    ;;
esac
