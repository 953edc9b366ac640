#!/usr/bin/env bash
# Make a local Python base image without any container registry, for CI and air-gapped users.
#
# Usage:   BASE_IMAGE=$(sudo scripts/make-base-image.sh)   (debootstrap needs root)
#          docker build --build-arg BASE_IMAGE="$BASE_IMAGE" ...   (or: nox -s build -- --base-image "$BASE_IMAGE")
#
# Needs:   root, debootstrap, a running Docker engine, and a reachable Debian mirror (DEBIAN_MIRROR).
# Does:    debootstrap --variant=minbase --include=python3,python3-venv <suite> into a temporary
#          directory, trims what a container never reads (apt caches and lists, docs but their
#          copyright files, man and info pages, locales, logs), then `docker import`s the tree with
#          a PATH, a UTF-8 locale and `python3` as the default command. The result is about 120 MB,
#          close to the official python:3.11-slim that users get by default.
# Prints:  ONLY the image reference on stdout (progress goes to stderr), so callers can capture it.
# Idempotent: when the image already exists it is not made again (FORCE=1, true, yes or on remakes it).
#
# Settings (environment): BASE_IMAGE_REF (default python-base:3.11-bookworm-minbase),
#   DEBIAN_SUITE (bookworm), DEBIAN_MIRROR (http://deb.debian.org/debian), FORCE (unset).
set -euo pipefail

ref=${BASE_IMAGE_REF:-python-base:3.11-bookworm-minbase}
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { echo "make-base-image: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null || die "docker not found on PATH; install docker.io and start dockerd"
docker info >/dev/null 2>&1 || die "no Docker engine reachable (is dockerd running? DOCKER_HOST=${DOCKER_HOST:-unset})"

force=${FORCE:-}
case ${force,,} in
  "" | 0 | false | no | off) force= ;;
  1 | true | yes | on) ;;
  *) die "FORCE=$force is neither yes (1, true, yes, on) nor no (0, false, no, off)" ;;
esac
if [[ -z $force ]] && docker image inspect "$ref" >/dev/null 2>&1; then
  log "$ref already exists; not remaking it (FORCE=1 remakes it)"
  echo "$ref"
  exit 0
fi

command -v debootstrap >/dev/null || die "debootstrap not found on PATH; apt-get install debootstrap"
[[ $(id -u) == 0 ]] || die "debootstrap needs root (it creates device nodes and chroots)"

# /var/tmp rather than /tmp: the rootfs needs a filesystem without noexec/nodev.
rootfs=$(mktemp -d /var/tmp/make-base-image.XXXXXX)
# debootstrap mounts proc inside the tree: unmount it before removing, and never cross a mount.
# A signal becomes an exit, so the clean-up runs on Ctrl-C or a timeout's SIGTERM too.
trap 'umount "$rootfs/proc" 2>/dev/null || true; rm -rf --one-file-system "$rootfs"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "debootstrap $suite (minbase + python3, python3-venv) from $mirror; this takes a few minutes"
debootstrap --variant=minbase --include=python3,python3-venv "$suite" "$rootfs" "$mirror" \
  | sed -u 's/^/  /' >&2

log "trimming the root filesystem"
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/debconf/*-old \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
  "$rootfs"/usr/share/lintian "$rootfs"/usr/share/linda "$rootfs"/var/log/* "$rootfs"/tmp/*
find "$rootfs/usr/lib/python3" "$rootfs/usr/lib/python3.11" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
log "root filesystem: $(du -sh "$rootfs" | cut -f1)"

log "importing as $ref"
tar --numeric-owner -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.opencontainers.image.description=\"Debian $suite minbase with python3 and python3-venv, made by scripts/make-base-image.sh\"" \
  --message "debootstrap --variant=minbase --include=python3,python3-venv $suite" \
  - "$ref" >/dev/null
log "done: $(docker image inspect --format '{{.Size}}' "$ref" | awk '{printf "%.0f MB", $1/1e6}')"
echo "$ref"
