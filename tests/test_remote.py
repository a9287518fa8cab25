"""`edgecnn bench --host`: a real OpenSSH server on a loopback port, a throw-away key, remote benches against it."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgecnn.common.errors import EdgecnnError
from edgecnn.deploy.bench import artifact_macs, bench_paths
from edgecnn.deploy.remote import Host, RemoteOptions, _run, bench_hosts
from edgecnn.deploy.targets import resolve_target
from tests.conftest import run_subprocess
from tests.test_runtime_isolation import BLOCKER

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
needs_sshd = pytest.mark.skipif(not (Path(SSHD).is_file() and shutil.which("ssh") and shutil.which("scp")),
                                reason="needs an OpenSSH server and client (openssh-server; .ci/run installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """An sshd on 127.0.0.1 that accepts one fresh key; yields (ssh config path, port)."""
    yield from _serve(tmp_path_factory.mktemp("sshd"), sftp=True)


@pytest.fixture
def sshd_without_sftp(tmp_path):
    """The same, with no SFTP subsystem, as dropbear or a trimmed sshd_config leaves a device."""
    yield from _serve(tmp_path, sftp=False)


def _serve(home: Path, sftp: bool):
    """Start sshd with its keys and configs in ``home``, with or without SFTP; yield (ssh config, port); stop it."""
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / name)], check=True)
    (home / "authorized_keys").write_text((home / "user_key.pub").read_text())
    (home / "authorized_keys").chmod(0o600)
    port = _free_port()
    (home / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {home}/host_key\nAuthorizedKeysFile {home}/authorized_keys\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        f"PidFile {home}/sshd.pid\nPermitRootLogin prohibit-password\n"
        + ("Subsystem sftp internal-sftp\n" if sftp else "")
    )
    (home / "ssh_config").write_text(
        f"Host loopback 127.0.0.1\n  HostName 127.0.0.1\n  Port {port}\n  IdentityFile {home}/user_key\n"
        f"  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile {home}/known_hosts\n"
        "  LogLevel ERROR\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(home / "sshd_config")], stderr=subprocess.PIPE, text=True)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        server.kill()
        pytest.fail(f"sshd did not start: {server.communicate()[1]}")
    yield home / "ssh_config", port
    server.terminate()
    server.wait(10)


def _remote_bench(args: list[str], ssh_config: Path, *hosts: str) -> subprocess.CompletedProcess:
    host_args = [a for h in hosts for a in ("--host", h)]
    return run_subprocess(["bench", *args, "--target", "rpi", "--runs", "10", "--warmup", "2", *host_args,
                           "--ssh-config", str(ssh_config), "--remote-python", sys.executable, "--json", "-"])


@needs_sshd
def test_fleet_bench_over_ssh_matches_the_local_accuracy(run_dir, sshd):
    ssh_config, port = sshd
    done = _remote_bench([str(run_dir), "--threads", "64", "--batch", "4"], ssh_config, "loopback",
                         f"{getpass.getuser()}@127.0.0.1:{port}")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    hosts = [h["host"] for h in document["hosts"]]
    assert hosts == ["loopback", f"{getpass.getuser()}@127.0.0.1:{port}"]
    for host in hosts:  # each host capped the request itself, and said so
        assert f"note: {host}: 64 threads asked, {min(4, os.cpu_count())} used" in done.stderr
        assert f"note: {host}: batch 4 asked, 1 used: the emulated Pi profile" in done.stderr
    assert document["latency"]["batch"] == 1 and {r["batch"] for r in document["rows"]} == {1}
    assert all(h["error"] is None and "emulated" in h["target"]["label"] for h in document["hosts"])
    local = {r.artifact: r for r in bench_paths([run_dir], resolve_target("rpi"), warmup=1, runs=2)}
    for host in hosts:
        rows = [r for r in document["rows"] if r["host"] == host]
        assert sorted(r["artifact"] for r in rows) == sorted(local)  # no Keras model on a runtime-only device
        for row in rows:
            assert row["status"] == "passed" and row["p50_ms"] > 0
            # the test split travelled as test_split.npz: the same images, so the same accuracy
            assert row["accuracy"] == pytest.approx(local[row["artifact"]].accuracy)
            assert row["n"] == local[row["artifact"]].n


@needs_sshd
def test_unreachable_host_is_one_line_and_the_fleet_reports_it(run_dir, sshd):
    ssh_config, _ = sshd
    closed = f"127.0.0.1:{_free_port()}"
    alone = _remote_bench([str(run_dir / "model_int8.tflite")], ssh_config, closed)
    assert alone.returncode == 1 and alone.stdout == ""
    assert alone.stderr.startswith(f"error: cannot reach {closed}") and alone.stderr.count("\n") == 1
    fleet = _remote_bench([str(run_dir / "model_int8.tflite")], ssh_config, "loopback", closed)
    assert fleet.returncode == 1 and "1 of 2 hosts failed" in fleet.stderr
    document = json.loads(fleet.stdout)
    statuses = {(r["host"], r["status"]) for r in document["rows"]}
    assert statuses == {("loopback", "passed"), (closed, "failed")}


@needs_sshd
def test_each_host_reports_its_steps_as_it_goes(run_dir, sshd):
    """What `bench --host` shows per host on a terminal, called from each host's own thread."""
    ssh_config, _ = sshd
    closed = f"127.0.0.1:{_free_port()}"
    steps = []
    options = RemoteOptions(warmup=1, runs=5, python=sys.executable, ssh_config=str(ssh_config))
    results = bench_hosts(["loopback", closed], [run_dir / "model_int8.tflite"], options,
                          on_step=lambda host, step: steps.append((host, step)))
    assert [r.error is None for r in results] == [True, False]
    assert [step for host, step in steps if host == "loopback"] == [
        "connecting", "copying the models", "running edgecnn bench", "done"]
    assert [step for host, step in steps if host == closed] == ["connecting", "failed"]


@needs_sshd
def test_a_device_without_sftp_gets_the_models_by_the_original_scp_protocol(run_dir, sshd_without_sftp):
    ssh_config, _ = sshd_without_sftp
    options = RemoteOptions(warmup=1, runs=5, python=sys.executable, ssh_config=str(ssh_config))
    (result,) = bench_hosts(["loopback"], [run_dir / "model_int8.tflite"], options)
    assert result.error is None and [(r.artifact, r.status) for r in result.rows] == [("model_int8.tflite", "passed")]


def _int8_copy(run_dir: Path, folder: Path) -> Path:
    """The int8 TFLite model and its manifest copied into a new ``folder``; returns the model's path there."""
    folder.mkdir()
    for name in ("model_int8.tflite", "manifest.json"):
        shutil.copy(run_dir / name, folder / name)
    return folder / "model_int8.tflite"


@needs_sshd
def test_an_artifact_that_fails_on_the_device_comes_back_as_its_row_and_exit_1(run_dir, sshd, tmp_path):
    """The device's bench exits 1 after its JSON report; the rows still come back, and so does the failure."""
    ssh_config, _ = sshd
    altered = _int8_copy(run_dir, tmp_path / "altered")
    with altered.open("ab") as f:
        f.write(b"\0")  # no longer the sha256 its manifest lists
    done = _remote_bench([str(altered), str(run_dir / "model_fp32.tflite")], ssh_config, "loopback")
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert document["hosts"][0]["error"] is None  # the host worked; one of its artifacts did not
    statuses = [(r["artifact"], r["status"]) for r in document["rows"]]
    assert statuses == [("altered/model_int8.tflite", "failed"), (f"{run_dir.name}/model_fp32.tflite", "passed")]
    assert "does not match its manifest" in document["rows"][0]["note"]
    assert done.stderr.splitlines()[-1] == (
        "error: 1 of 2 artifacts did not pass: loopback: altered/model_int8.tflite (failed); see the table")


@needs_sshd
def test_a_runtime_only_device_gets_its_onnx_macs_counted_here(run_dir, sshd, tmp_path):
    """Counting an ONNX model's MACs takes the onnx package, which edgecnn[runtime] lacks: the rows that come back
    from such a device get them from the local copy of the same file, and GMAC/s from the device's FPS."""
    ssh_config, _ = sshd
    (tmp_path / "site").mkdir()
    # a device with edgecnn[runtime] alone
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER.format(blocked={"onnx", "tensorflow", "keras",
                                                                                "sklearn"}))
    device_python = tmp_path / "device_python"
    device_python.write_text(f'#!/bin/sh\nPYTHONPATH="{tmp_path / "site"}" exec "{sys.executable}" "$@"\n')
    device_python.chmod(0o755)
    assert subprocess.run([device_python, "-c", "import onnx"], capture_output=True).returncode == 1
    done = run_subprocess(["bench", str(run_dir / "model_int8.onnx"), "--target", "rpi", "--runs", "10",
                           "--warmup", "2", "--host", "loopback", "--ssh-config", str(ssh_config),
                           "--remote-python", str(device_python), "--json", "-"])
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)["rows"][0]
    assert row["status"] == "passed" and row["macs"] == artifact_macs(run_dir / "model_int8.onnx") > 0
    assert row["gmacs"] == pytest.approx(row["macs"] * row["fps"] / 1e9)


@needs_sshd
def test_shell_metacharacters_in_paths_reach_the_device_as_plain_names(run_dir, sshd, tmp_path):
    ssh_config, _ = sshd
    hostile = _int8_copy(run_dir, tmp_path / "a b;touch PWNED;$(touch PWNED2):x'\"")
    done = _remote_bench([str(hostile)], ssh_config, "loopback")
    assert done.returncode == 0, done.stderr
    assert [r["artifact"] for r in json.loads(done.stdout)["rows"]] == ["model_int8.tflite"]
    home = Path.home()
    assert not any((where / name).exists() for where in (home, tmp_path, Path.cwd()) for name in ("PWNED", "PWNED2"))


@needs_sshd
def test_rows_from_several_folders_carry_the_local_folder_names(run_dir, sshd, tmp_path):
    ssh_config, _ = sshd
    second = _int8_copy(run_dir, tmp_path / "second")
    done = _remote_bench([str(run_dir / "model_int8.tflite"), str(second)], ssh_config, "loopback")
    assert done.returncode == 0, done.stderr
    names = [r["artifact"] for r in json.loads(done.stdout)["rows"]]
    assert names == [f"{run_dir.name}/model_int8.tflite", "second/model_int8.tflite"]  # not the device's 0/ and 1/


@needs_sshd
@pytest.mark.parametrize("report, reason", [
    ({"rows": [{"artifact": "m.tflite", "p50_ms": "fast"}], "target": {"label": "rpi"}}, "row field p50_ms is 'fast'"),
    ({"rows": [{"artifact": "m.tflite", "format": "tflite"}], "target": {"label": "rpi"}},
     "row {'artifact': 'm.tflite', 'format': 'tflite'} lacks precision, size_kb"),
    ({"rows": [{"artifact": "m.tflite", "format": "tflite", "precision": "int8", "size_kb": 36, "status": "great"}],
      "target": {"label": "rpi"}}, "row status 'great'"),
    ({"rows": [["m.tflite"]], "target": {"label": "rpi"}}, "row ['m.tflite'] is not an object"),
    ({"rows": [], "target": {"notes": "fast"}}, "target {'notes': 'fast'} lacks a label or its notes"),
    ([], "not an object with a list of rows"),
    ("[" * 100_000 + "]" * 100_000,  # Python's JSON parser recurses
     "maximum recursion depth exceeded while decoding a JSON array from a unicode string"),
])
def test_a_device_report_of_the_wrong_shape_is_a_failed_host_not_a_traceback(run_dir, sshd, tmp_path, report,
                                                                             reason):
    """The device may run another edgecnn version, or another program that prints JSON: each field of its report
    is checked before the table or the JSON shows it (a string latency used to raise in the table's formatting)."""
    ssh_config, _ = sshd
    device_python = tmp_path / "device_python"
    (tmp_path / "report.json").write_text(report if isinstance(report, str) else json.dumps(report))
    device_python.write_text(f'#!/bin/sh\ncat "{tmp_path / "report.json"}"\n')
    device_python.chmod(0o755)
    done = run_subprocess(["bench", str(run_dir / "model_int8.tflite"), "--host", "loopback", "--ssh-config",
                           str(ssh_config), "--remote-python", str(device_python)])
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"error: loopback: the remote bench did not print a valid JSON report ({reason})")


@needs_sshd
def test_a_host_without_edgecnn_says_what_to_install(run_dir, sshd, tmp_path):
    ssh_config, _ = sshd
    bare_python = shutil.which("python3", path="/usr/bin") or pytest.skip("no system python3 in /usr/bin")
    done = run_subprocess(["bench", str(run_dir / "model_int8.tflite"), "--host", "loopback", "--ssh-config",
                           str(ssh_config), "--remote-python", bare_python])
    assert done.returncode == 1
    assert "has no edgecnn" in done.stderr and "pip install 'edgecnn[runtime]'" in done.stderr


@pytest.mark.parametrize("spec, destination, port", [
    ("pi@raspberrypi.local", "pi@raspberrypi.local", None),
    ("pi5", "pi5", None),
    ("edge_user@10.0.0.7:2222", "edge_user@10.0.0.7", 2222),
])
def test_host_specs_that_parse(spec, destination, port):
    assert Host.parse(spec) == Host(destination, port, spec)


@pytest.mark.parametrize("spec", ["pi@host;reboot", "-oProxyCommand=touch x", "-oProxyCommand=x", "pi@$(id)",
                                  "pi@host:0", "pi@host:70000", "pi@ho st", "pi@host`id`", "", "@host", "pi@-host"])
def test_host_specs_with_shell_or_option_syntax_are_refused(spec):
    with pytest.raises(EdgecnnError, match="expected \\[user@\\]host\\[:port\\]"):
        Host.parse(spec)


def test_one_host_given_as_a_string_is_one_host(run_dir):
    """Not one host per letter ("p", "i", ... each parsing well until ";")."""
    with pytest.raises(EdgecnnError, match="invalid --host 'pi@x;reboot'"):
        bench_hosts("pi@x;reboot", run_dir, RemoteOptions())


def test_cli_refuses_a_bad_host_as_a_usage_error(run_dir):
    done = run_subprocess(["bench", str(run_dir), "--host", "pi@x;reboot"])
    assert done.returncode == 2 and "invalid --host" in done.stderr and "Traceback" not in done.stderr


def test_a_step_that_outlives_its_timeout_names_the_host_and_step():
    options = RemoteOptions(timeout=0.3)
    start = time.perf_counter()
    with pytest.raises(EdgecnnError, match="pi5: timed out after 0.3 s while copying"):
        _run([sys.executable, "-c", "import time; time.sleep(5)"], Host.parse("pi5"), "copying", options)
    assert time.perf_counter() - start < 3


def test_the_run_keras_model_named_alone_travels_with_its_manifest_and_test_split(run_dir, tmp_path):
    from edgecnn.deploy.remote import bundle

    item = bundle(run_dir / "model.keras")
    assert [f.name for f in item.files] == ["model.keras", "manifest.json"] and item.bench_name == "model.keras"
    assert item.test is not None and len(item.test[1]) == 360  # the digits test split, built here
    alone = tmp_path / "model.keras"  # a folder with no manifest: the file alone, no accuracy
    shutil.copy(run_dir / "model.keras", alone)
    item = bundle(alone)
    assert [f.name for f in item.files] == ["model.keras"] and item.test is None


def test_a_signed_run_travels_with_its_signature(tmp_path):
    """A device that trusts keys checks the signature there, so bench --host copies it with the models."""
    from edgecnn.deploy.remote import bundle
    from edgecnn.runtime.signing import SIGNATURE_NAME
    from edgecnn.workstation.signing import keygen, sign_run

    run = tmp_path / "run"
    shutil.copytree(Path(__file__).resolve().parents[1] / "models" / "mnist", run)
    assert SIGNATURE_NAME not in {p.name for p in bundle(run).files}
    sign_run(run, keygen(tmp_path / "keys" / "k")[0])
    assert SIGNATURE_NAME in {p.name for p in bundle(run).files}
    assert SIGNATURE_NAME in {p.name for p in bundle(run / "model_int8.tflite").files}
