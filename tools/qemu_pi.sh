#!/usr/bin/env bash
# A Raspberry Pi 4's software on an x86 Linux host: Debian 12's aarch64 Python 3.11 under qemu-user, emulating the
# Pi 4's CPU (Cortex-A72), with `pip install 'edgecnn[runtime]'` done for aarch64 (LiteRT, ONNX Runtime, OpenCV and
# numpy as a Pi gets them from PyPI). It runs the ARM builds of the kernels, so it shows what a Pi computes; its
# timings are those of an emulator, not of a Pi.
#
#   sudo bash tools/qemu_pi.sh .qemu-pi               # once: Debian's qemu-user-static and arm64 packages, PyPI wheels
#   sudo .qemu-pi/python -m edgecnn predict models/mnist/model_int8.tflite digit.png
#   sudo bash benchmarks/rpi_qemu.sh OUT models/mnist  # `edgecnn bench --host` against it, over a loopback sshd
#
# Needs root (apt-get, and a private mount namespace for /proc/cpuinfo), Debian's package mirrors and PyPI.
# /proc/cpuinfo: qemu-user 7.2 passes the host's through, and the ARM builds of LiteRT and ONNX Runtime (cpuinfo)
# crash reading an x86 one, so python runs with a Pi 4's mounted over it. The CPU model matters: under qemu's
# default `max` CPU, which offers SME, the MNIST int8 LiteRT model's XNNPACK answers are wrong (2% and 8% accuracy
# on 100 and 500 test images), and right with `max,sme=off` or LiteRT's built-in kernels; a Cortex-A72 (Pi 4),
# A76 (Pi 5), A53, Neoverse-N1 or A64FX gives the right answers.
set -euo pipefail
env_dir=$(mkdir -p "${1:?usage: qemu_pi.sh ENV_DIR}" && cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "qemu-user-static and Debian 12's aarch64 Python 3.11 ..."
dpkg --add-architecture arm64
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
# Python and what OpenCV's wheel links against (libGL, GLib), with everything they depend on
mapfile -t debs < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances --no-pre-depends python3.11:arm64 libgl1:arm64 libglib2.0-0:arm64 libgomp1:arm64 \
  | grep -E '^[a-z0-9].*:arm64$' | sort -u)
(cd "$work" && apt-get download -qq "${debs[@]}" 2>/dev/null)
rm -rf "$env_dir/root" "$env_dir/site"
mkdir -p "$env_dir/root"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$env_dir/root"; done

echo "edgecnn[runtime] for aarch64 ..."
pip wheel -q --no-deps "$repo" -w "$work/wheel"
platforms=()
for glibc in 17 27 28 31 34 35 36; do platforms+=(--platform "manylinux_2_${glibc}_aarch64"); done
pip install -q --target "$env_dir/site" "${platforms[@]}" --platform manylinux2014_aarch64 --platform any \
  --python-version 3.11 --implementation cp --abi cp311 --only-binary=:all: --find-links "$work/wheel" \
  "edgecnn[runtime]"

# A Raspberry Pi 4's /proc/cpuinfo: four Cortex-A72 cores (implementer 0x41, part 0xd08)
for core in 0 1 2 3; do
  printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n' "$core"
  printf 'CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
done > "$env_dir/cpuinfo"
printf 'Hardware\t: BCM2835\nRevision\t: c03111\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n' >> "$env_dir/cpuinfo"

cat > "$env_dir/python" <<'EOF'
#!/bin/sh
# aarch64 Python with edgecnn[runtime], as on a Raspberry Pi 4 (Cortex-A72), under qemu-user; made by tools/qemu_pi.sh
here=$(dirname "$(readlink -f "$0")")
exec unshare -m sh -c 'mount --bind "$0/cpuinfo" /proc/cpuinfo && exec env PYTHONPATH="$0/site" \
  qemu-aarch64-static -cpu cortex-a72 -L "$0/root" "$0/root/usr/bin/python3.11" "$@"' "$here" "$@"
EOF
chmod +x "$env_dir/python"
# The processes edgecnn starts (each model's RSS in `bench`, the probe of a model without a manifest) run
# sys.executable. qemu-user cannot exec an aarch64 binary by itself (no binfmt_misc handler here), so sys.executable
# names this wrapper, as on a Pi it names the Pi's python.
cat > "$env_dir/site/sitecustomize.py" <<'EOF'
import sys
from pathlib import Path

sys.executable = str(Path(__file__).resolve().parents[1] / "python")
EOF
"$env_dir/python" -c "import platform, edgecnn.runtime.classifier; print('ready:', platform.machine(), 'Python',
platform.python_version(), 'with edgecnn.runtime.classifier')"
