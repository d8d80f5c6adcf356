#!/usr/bin/env bash
# Prove the runtime on Raspberry Pi 4 / Pi 5 CPUs: an arm64 Debian root under qemu user-mode
# emulation, the runtime installed from aarch64 wheels, every shipped bundle run through the
# Python API and the CLI on QEMU_CPU=cortex-a72 (Pi 4) and cortex-a76 (Pi 5), compared with the
# same run on this x86 host.  Results: benchmarks/results/arm64.{json,md}.
#
#   sudo benchmarks/arm64/run.sh            (Debian/Ubuntu host, root; ~10 minutes on 2 cores)
#
# Environment: EDGE_FINER_ARM64_ROOT (default /var/tmp/edge-finer-arm64, reused between runs),
# DEBIAN_MIRROR (default http://deb.debian.org/debian).
#
# Pitfalls handled here (see the issue): qemu 7.2 (Debian 12) makes onnxruntime segfault at
# import because the guest reads the host's x86 /proc/cpuinfo, so a Pi-like cpuinfo is bind-
# mounted over it; qemu's default "max" CPU (with SVE) gives wrong int8 results, so QEMU_CPU is
# always pinned; nothing is compiled in the guest (venv --without-pip, wheels only, --no-compile).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
PROJECT="$(cd "$HERE/../.." && pwd)"
ROOTFS="${EDGE_FINER_ARM64_ROOT:-/var/tmp/edge-finer-arm64}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PY="${PYTHON:-python3}"
WORK="$ROOTFS/opt/edge-finer-check"
say() { printf '\n== %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "error: run as root (debootstrap, chroot and mount need it)" >&2; exit 1; }

say "host tools (qemu-user-static, binfmt-support, debootstrap)"
need=()
for pkg in qemu-user-static binfmt-support debootstrap; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "error: qemu-aarch64 binfmt not registered" >&2; exit 1; }

if [ ! -x "$ROOTFS/usr/bin/python3" ]; then
  say "arm64 Debian bookworm root in $ROOTFS (debootstrap --foreign, then the second stage under emulation)"
  rm -rf "$ROOTFS"
  debootstrap --arch=arm64 --foreign --variant=minbase --include=python3,python3-venv bookworm "$ROOTFS" "$MIRROR"
  chroot "$ROOTFS" /debootstrap/debootstrap --second-stage
fi

cleanup() {
  umount "$ROOTFS/proc/cpuinfo" 2>/dev/null || true
  umount "$ROOTFS/proc" 2>/dev/null || true
  umount "$ROOTFS/sys" 2>/dev/null || true
}
trap cleanup EXIT
mountpoint -q "$ROOTFS/proc" || mount -t proc proc "$ROOTFS/proc"
# onnxruntime's cpuinfo reads the CPU lists under /sys; without them it warns and may pick
# generic kernels
mountpoint -q "$ROOTFS/sys" || mount -t sysfs -o ro sysfs "$ROOTFS/sys"
# A Raspberry Pi 4-like cpuinfo (4 x Cortex-A72) instead of the host's x86 one.
cat > "$ROOTFS/etc/edge-finer-cpuinfo" <<'EOF'
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

Hardware	: BCM2835
Model		: Raspberry Pi 4 Model B Rev 1.4
EOF
mount --bind "$ROOTFS/etc/edge-finer-cpuinfo" "$ROOTFS/proc/cpuinfo"

say "aarch64 wheels of the runtime (same versions as this host), and the project's own wheel"
rm -rf "$WORK" && mkdir -p "$WORK/wheels"
pins=$("$PY" - <<'EOF'
from importlib.metadata import version
print(" ".join(f"{d}=={version(d)}" for d in ("onnxruntime", "tokenizers", "numpy", "platformdirs", "typer", "rich")))
EOF
)
"$PY" -m pip download -q --only-binary=:all: --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 \
  --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none -d "$WORK/wheels" $pins
# from a clean copy: a stale build/ folder in the checkout once put old bundles into the wheel
src="$(mktemp -d)"
cp -r "$PROJECT"/edge_finer "$PROJECT"/quantize "$PROJECT"/bundles "$PROJECT"/cli.py "$PROJECT"/setup.cfg "$PROJECT"/pyproject.toml \
  "$PROJECT"/README.md "$src"/
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/wheels" "$src"
rm -rf "$src"

say "venv in the arm64 root, from those wheels only (no compiler, no bytecode)"
chroot "$ROOTFS" /usr/bin/python3 -m venv --clear /opt/edge-finer  # fresh each run: a reinstall of the same version would be skipped
chroot "$ROOTFS" /opt/edge-finer/bin/python -m pip install -q --no-index --no-compile \
  --find-links /opt/edge-finer-check/wheels edge-finer

say "fixed sentences; the reference run on this x86 host"
(cd "$PROJECT" && "$PY" -m benchmarks.arm64.sentences "$WORK/sentences.json")
cp "$HERE/check.py" "$WORK/check.py"
(cd "$WORK" && env -u EDGE_FINER_BUNDLES EDGE_FINER_SHIPPED=1 "$PY" "$WORK/check.py" "$WORK/sentences.json" "$WORK/x86.json")

arm_results=()
for cpu in cortex-a72 cortex-a76; do
  say "arm64 under emulation, QEMU_CPU=$cpu"
  chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root QEMU_CPU="$cpu" \
    /opt/edge-finer/bin/python /opt/edge-finer-check/check.py /opt/edge-finer-check/sentences.json \
    "/opt/edge-finer-check/arm64-$cpu.json"
  arm_results+=("$WORK/arm64-$cpu.json")
done

say "comparison"
(cd "$PROJECT" && "$PY" -m benchmarks.arm64.compare "$WORK/sentences.json" "$WORK/x86.json" "${arm_results[@]}")
