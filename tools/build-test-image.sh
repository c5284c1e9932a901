#!/usr/bin/env bash
# Build the test-host image (Debian 12 + systemd + python3) without a registry:
# debootstrap from this machine's own apt mirror, then `podman import`.
# Skipped when an image built from the same recipe already exists: the image carries
# a label with the sha256 of this script, so changing the recipe rebuilds it.
set -euo pipefail

IMAGE="${TEST_IMAGE:-localhost/three-instance-host:bookworm}"
SUITE=bookworm
here="$(cd "$(dirname "$0")" && pwd)"
recipe_hash="$(sha256sum "$here/build-test-image.sh" | cut -c1-16)"
label=org.three-instance.recipe

current="$(podman image inspect --format "{{ index .Labels \"$label\" }}" "$IMAGE" 2>/dev/null || true)"
if [ "$current" = "$recipe_hash" ] && [ "${FORCE:-0}" != 1 ]; then
  echo "test image $IMAGE is up to date (recipe $recipe_hash)"
  exit 0
fi

# The mirror this machine already uses: first URIs: line of the deb822 sources,
# or the first deb line of a classic sources.list.
mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
if [ -z "$mirror" ]; then
  mirror="$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit} $1 == "deb" {print $3; exit}' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n1)"
fi
[ -n "$mirror" ] || { echo "no apt mirror found in /etc/apt/sources.list{,.d}" >&2; exit 1; }

work="$(mktemp -d /var/tmp/three-instance-image.XXXXXX)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "building $IMAGE from $mirror ($SUITE)"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,iproute2,ca-certificates,procps,curl,gnupg \
  "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

# Same apt sources as the host (main, -updates, -security), so the hosts install from the same mirror.
rm -f "$rootfs/etc/apt/sources.list"
cp /etc/apt/sources.list.d/*.sources "$rootfs/etc/apt/sources.list.d/" 2>/dev/null || true
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$rootfs/etc/apt/sources.list"
# A container does not need ttys, udev, logind or kernel mounts.
for unit in getty@tty1.service console-getty.service systemd-logind.service systemd-udevd.service \
  systemd-udev-trigger.service systemd-remount-fs.service sys-kernel-debug.mount \
  sys-kernel-tracing.mount dev-hugepages.mount; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
: >"$rootfs/etc/machine-id"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
# An old lists/ mtime makes apt (and Ansible's cache_valid_time) fetch fresh lists on first use.
touch -d @0 "$rootfs/var/lib/apt/lists"

tar -C "$rootfs" --numeric-owner -cf - . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=podman' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL $label=$recipe_hash" \
  - "$IMAGE" >/dev/null
echo "built $IMAGE (recipe $recipe_hash)"
