#!/usr/bin/env bash
# `edgecnn bench --target rpi --host` end to end against an emulated Raspberry Pi 4: an OpenSSH server on a loopback
# port, and on the "device" side the aarch64 Python that tools/qemu_pi.sh makes (Cortex-A72 under qemu-user, with
# edgecnn[runtime] from PyPI's aarch64 wheels). The same models are then benched here on x86 with --target rpi, so
# the two tables compare what the ARM and x86 builds of LiteRT and ONNX Runtime compute. Latency on the ARM side is
# the emulator's, not a Pi's: for the record only, as is its RSS.
#
#   sudo bash benchmarks/rpi_qemu.sh benchmarks/results models/mnist      # needs the test split: EDGECNN_DATA_DIR
#
# Writes OUT/rpi_qemu.{json,md} (aarch64, over SSH) and OUT/rpi_qemu_x86.{json,md} (this host); NAME=rpi_qemu_fashion
# names them OUT/rpi_qemu_fashion{,_x86}.{json,md} instead. Needs root (sshd, tools/qemu_pi.sh); QEMU_PI names the
# environment's folder (default .qemu-pi, made when missing).
set -euo pipefail
out=${1:?usage: rpi_qemu.sh OUT_DIR RUN_DIR...}
shift
env_dir=${QEMU_PI:-.qemu-pi}
name=${NAME:-rpi_qemu}
[ -x "$env_dir/python" ] || bash "$(dirname "$0")/../tools/qemu_pi.sh" "$env_dir"
[ -x /usr/sbin/sshd ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
mkdir -p /run/sshd  # sshd's privilege-separation folder

ssh_dir=$(mktemp -d)
trap 'kill "$(cat "$ssh_dir/sshd.pid" 2>/dev/null)" 2>/dev/null; rm -rf "$ssh_dir"' EXIT
ssh-keygen -q -t ed25519 -N "" -f "$ssh_dir/host_key"
ssh-keygen -q -t ed25519 -N "" -f "$ssh_dir/user_key"
cp "$ssh_dir/user_key.pub" "$ssh_dir/authorized_keys"
port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
cat > "$ssh_dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $ssh_dir/host_key
AuthorizedKeysFile $ssh_dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PidFile $ssh_dir/sshd.pid
Subsystem sftp internal-sftp
EOF
cat > "$ssh_dir/ssh_config" <<EOF
Host pi4-qemu
  HostName 127.0.0.1
  Port $port
  User $(id -un)
  IdentityFile $ssh_dir/user_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile $ssh_dir/known_hosts
  LogLevel ERROR
EOF
/usr/sbin/sshd -f "$ssh_dir/sshd_config"
for _ in $(seq 50); do [ -s "$ssh_dir/sshd.pid" ] && break; sleep 0.1; done

python=$(cd "$env_dir" && pwd)/python
edgecnn bench "$@" --target rpi --runs 50 --warmup 5 --host pi4-qemu --ssh-config "$ssh_dir/ssh_config" \
  --remote-python "$python" --timeout 7200 --json "$out/$name.json" --md "$out/$name.md"
edgecnn bench "$@" --target rpi --runs 200 --warmup 20 --json "$out/${name}_x86.json" --md "$out/${name}_x86.md"
# the device called itself "native aarch64": say what it was
md="$out/$name.md"
{ head -n 1 "$md"; echo; echo "On an emulated Raspberry Pi 4 (tools/qemu_pi.sh: qemu-user as a Cortex-A72), not a Pi: accuracy is what"
  echo "the ARM builds of LiteRT and ONNX Runtime compute; latency and RSS are the emulator's, not a Pi's."; tail -n +2 "$md"; } > "$md.tmp"
mv "$md.tmp" "$md"
