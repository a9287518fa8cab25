"""`edgecnn bench --host USER@HOST`: run the benchmark on remote devices over SSH and bring the rows back.

    options = RemoteOptions(target="rpi", ssh_config="~/.ssh/config", python="/home/pi/venv/bin/python")
    results = bench_hosts(["pi@pi4.local", "pi@pi5.local:2222"], ["models/mnist"], options,
                          on_step=lambda host, step: print(host, step))  # "connecting" ... "done" or "failed"
    rows = [row for result in results for row in result.rows]     # each row's ``host`` says where it ran

Per host, in parallel: ``ssh HOST mktemp -d``; ``scp`` (``scp -O`` where the server has no SFTP) each run
directory's manifest and artifacts (no Keras model: the device has ``edgecnn[runtime]`` only) together with
``test_split.npz``, the test images and labels built here, so the device measures accuracy without the dataset or
scikit-learn; ``ssh HOST PYTHON -m edgecnn bench ... --json -``; parse that JSON; ``ssh HOST rm -rf`` the folder. A
host that cannot be reached, times out or fails gives a :class:`HostResult` with its one-line ``error`` and no
rows.

Safety: local commands are argument lists (no local shell), options end with ``--`` where the tool allows it, and
host specs must match ``[user@]host[:port]`` with plain characters. The remote side's shell sees only edgecnn's own
names (a ``mktemp`` folder, numbered sub-folders, manifest-checked file names), each through ``shlex.quote``.
"""

from __future__ import annotations

import json
import re
import reprlib
import shlex
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecnn.common.errors import EdgecnnError, one_or_many
from edgecnn.common.json_records import from_json
from edgecnn.common.progress import OnStep
from edgecnn.deploy.bench import (
    FAILED,
    KERAS_FILE,
    STATUSES,
    TEST_SPLIT_FILE,
    WARMUP,
    BenchRow,
    artifact_macs,
    check_bench_path,
    fill_gmacs,
    find_test_split,
    manifest_for,
)
from edgecnn.runtime.manifest import MANIFEST_NAME, Manifest
from edgecnn.runtime.signing import SIGNATURE_NAME

HOST_PATTERN = re.compile(r"(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9._-]*)@)?(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*)"
                          r"(?::(?P<port>[0-9]{1,5}))?")
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Host:
    """A parsed ``[user@]host[:port]``."""

    destination: str  # what ssh and scp are given: user@host or host
    port: int | None
    spec: str  # as the user wrote it, for tables and errors

    @classmethod
    def parse(cls, spec: str) -> Host:
        match = HOST_PATTERN.fullmatch(spec)
        port = int(match["port"]) if match and match["port"] else None
        if not match or (port is not None and not 0 < port < 65536):
            raise EdgecnnError(f"invalid --host {spec!r}: expected [user@]host[:port] with letters, digits, '.', "
                               "'_' and '-' only")
        user = f"{match['user']}@" if match["user"] else ""
        return cls(user + match["host"], port, spec)


@dataclass(frozen=True)
class RemoteOptions:
    target: str = "rpi"
    threads: int | None = None
    warmup: int = WARMUP
    runs: int | None = None  # None: the host's bench times each artifact for its minimum time
    batch: int = 1
    python: str = "python3"  # the device's interpreter that has edgecnn[runtime]
    ssh_config: str | None = None  # ssh -F FILE (keys, ports, known hosts); None: the user's own
    timeout: float = 600.0  # seconds for each step on the host


@dataclass
class HostResult:
    host: str
    rows: list[BenchRow] = field(default_factory=list)
    target: dict | None = None  # the target as the host resolved it (label says native or emulated)
    versions: dict | None = None
    error: str | None = None


def _ssh_base(tool: str, host: Host, options: RemoteOptions) -> list[str]:
    argv = [tool, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}"]
    if options.ssh_config:
        argv += ["-F", str(Path(options.ssh_config).expanduser())]
    if host.port:
        argv += ["-p" if tool == "ssh" else "-P", str(host.port)]
    return argv


def _run(argv: list[str], host: Host, step: str, options: RemoteOptions, report: bool = False) -> str:
    """Run one local ssh/scp command; its stdout, or an EdgecnnError naming the host and the step. ``report``: the
    command is a bench with ``--json -``, whose exit status 1 after a JSON report means an artifact failed there
    (the report's rows say which), not that the step did."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=options.timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise EdgecnnError(f"{argv[0]} not found: install the OpenSSH client to bench with --host") from None
    except subprocess.TimeoutExpired:
        raise EdgecnnError(f"{host.spec}: timed out after {options.timeout:g} s while {step}") from None
    if report and done.returncode == 1 and done.stdout.lstrip().startswith("{"):
        return done.stdout
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        if done.returncode == 255:
            raise EdgecnnError(f"cannot reach {host.spec}: {reason}")
        if "No module named edgecnn" in done.stderr:
            reason = f"{options.python} has no edgecnn (on the device: pip install 'edgecnn[runtime]')"
        raise EdgecnnError(f"{host.spec}: {step} failed: {reason}")
    return done.stdout


def _remote(host: Host, options: RemoteOptions, step: str, *words: str, report: bool = False) -> str:
    command = shlex.join(words)  # the remote shell sees each word quoted
    return _run([*_ssh_base("ssh", host, options), "--", host.destination, command], host, step, options, report)


@dataclass
class _Bundle:
    """What one input path becomes on the device: a folder of files and what to bench in it."""

    files: list[Path]
    bench_name: str | None  # a single artifact's name, or None for the whole folder
    test: tuple[np.ndarray, np.ndarray] | None
    folder_name: str  # the local folder's name, which rows from several folders carry


def bundle(path: str | Path, data_dir=None) -> _Bundle:
    """The files a run directory or artifact needs on the device, and its test split when it can be built here."""
    path = Path(path)
    check_bench_path(path)
    if path.is_dir():
        manifest, folder, bench_name = Manifest.load(path), path, None
        files = [folder / MANIFEST_NAME] + [folder / a.file for a in manifest.artifacts if a.file != KERAS_FILE]
    else:
        manifest, folder, bench_name = manifest_for(path), path.parent, path.name
        files = [path] + ([folder / MANIFEST_NAME] if manifest else [])
    if manifest and (folder / SIGNATURE_NAME).is_file():  # a device that trusts keys checks it there
        files.append(folder / SIGNATURE_NAME)
    test = find_test_split(manifest.dataset, data_dir)[0] if manifest and manifest.dataset else None
    # without a test split here, the device tries its own dataset
    return _Bundle(files, bench_name, test, folder.resolve().name)


def bench_host(spec: str, bundles: list[_Bundle], options: RemoteOptions, on_step: OnStep | None = None) -> HostResult:
    """Copy, bench and clean up on one host; never raises for the host's own failures. ``on_step(spec, step)`` is
    told each step as it starts: connecting, copying the models, running edgecnn bench, then done or failed."""
    def step(name: str) -> None:
        if on_step:
            on_step(spec, name)

    result = HostResult(spec)
    try:
        host = Host.parse(spec)
        step("connecting")
        remote_dir = _remote(host, options, "creating a work folder", "mktemp", "-d",
                             "-t", "edgecnn-bench.XXXXXXXX").strip()
        if not re.fullmatch(r"/[A-Za-z0-9._/-]+", remote_dir):
            raise EdgecnnError(f"{spec}: mktemp returned an unexpected folder name {remote_dir!r}")
        try:
            step("copying the models")
            targets = _upload(host, bundles, remote_dir, options)
            cli = [options.python, "-m", "edgecnn", "bench", *targets, "--target", options.target,
                   "--warmup", str(options.warmup), "--batch", str(options.batch), "--json", "-"]
            if options.runs:
                cli += ["--runs", str(options.runs)]
            if options.threads:
                cli += ["--threads", str(options.threads)]
            step("running edgecnn bench")
            out = _remote(host, options, "running edgecnn bench", *cli, report=True)
        finally:
            try:
                _remote(host, options, "removing the work folder", "rm", "-rf", "--", remote_dir)
            except EdgecnnError:
                pass  # a leftover temporary folder on the device is not worth failing the bench for
        _read_report(result, out)
        _match_local(result.rows, bundles)
    except EdgecnnError as exc:
        result.error = str(exc)
    step("failed" if result.error else "done")
    return result


def _match_local(rows: list[BenchRow], bundles: list[_Bundle]) -> None:
    """Give the device's rows what is known here. Rows from several folders come back named after the device's
    folders 0, 1, ...: they get the local names. A runtime-only device cannot count an ONNX model's MACs (that
    takes the onnx package): they are counted here, on the local copy of the same file, with GMAC/s from the
    device's own FPS."""
    for row in rows:
        index, slash, name = row.artifact.partition("/")
        if slash and index.isdigit() and int(index) < len(bundles):
            item = bundles[int(index)]
            row.artifact = f"{item.folder_name}/{name}"
        elif not slash and len(bundles) == 1:  # one folder on the device: bare names
            item, name = bundles[0], row.artifact
        else:
            continue
        local = next((f for f in item.files if f.name == name), None)
        if row.macs is None and row.fps and local is not None:
            row.macs = artifact_macs(local)
            fill_gmacs(row)


def _upload(host: Host, bundles: list[_Bundle], remote_dir: str, options: RemoteOptions) -> list[str]:
    """Copy each bundle to ``remote_dir/N/``; return the remote paths to bench. Local paths go to scp absolute,
    so a ':' in a folder name is never read as a host."""
    folders = [str(i) for i in range(len(bundles))]
    _remote(host, options, "creating folders", "mkdir", "--", *(f"{remote_dir}/{f}" for f in folders))
    targets = []
    with tempfile.TemporaryDirectory(prefix="edgecnn-remote-") as tmp:
        for folder, item in zip(folders, bundles, strict=True):
            files = list(item.files)
            if item.test is not None:
                npz = Path(tmp) / folder / TEST_SPLIT_FILE
                npz.parent.mkdir()
                np.savez_compressed(npz, images=item.test[0], labels=item.test[1])
                files.append(npz)
            scp = [*_ssh_base("scp", host, options), "-q", "--", *(str(f.resolve()) for f in files),
                   f"{host.destination}:{remote_dir}/{folder}/"]
            try:
                _run(scp, host, "copying the models", options)
            except EdgecnnError as exc:
                # OpenSSH 9's scp speaks SFTP, and a server without it (dropbear, or an sshd with no "Subsystem
                # sftp") closes the connection: scp's original protocol (-O) still copies there
                if "Connection closed" not in str(exc):
                    raise
                _run([scp[0], "-O", *scp[1:]], host, "copying the models", options)
            targets.append(f"{remote_dir}/{folder}" + (f"/{item.bench_name}" if item.bench_name else ""))
    return targets


def _read_report(result: HostResult, stdout: str) -> None:
    """Fill ``result`` from the device's ``bench --json -`` report, checked field by field: a device may run another
    edgecnn version, or something else that prints JSON, and a wrong type would otherwise fail in the table."""
    try:
        document = json.loads(stdout)
        if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
            raise TypeError("not an object with a list of rows")
        rows = [_remote_row(record) for record in document["rows"]]
        target = document.get("target")
        notes = target.get("notes", []) if isinstance(target, dict) else None
        if not (isinstance(notes, list) and all(isinstance(note, str) for note in notes)
                and isinstance(target.get("label"), str)):
            raise TypeError(f"target {reprlib.repr(target)} lacks a label or its notes")
    except (json.JSONDecodeError, RecursionError, TypeError) as exc:  # RecursionError: JSON nested too deep
        raise EdgecnnError(f"{result.host}: the remote bench did not print a valid JSON report ({exc})") from None
    for row in rows:
        row.host = result.host
    result.rows, result.target, result.versions = rows, target, document.get("versions")


def _remote_row(record: dict) -> BenchRow:
    """The BenchRow of one row of a device's report (``json_records.from_json``); TypeError where it does
    not fit, or its status is not one of ``STATUSES``."""
    row = from_json(BenchRow, record, "row")
    if row.status not in STATUSES:
        raise TypeError(f"row status {reprlib.repr(row.status)}")
    return row


def bench_hosts(hosts: list[str] | str, paths: list[str | Path] | str | Path, options: RemoteOptions, data_dir=None,
                on_step: OnStep | None = None) -> list[HostResult]:
    """Bench ``paths`` on every host in parallel (each argument a list, or one); results in the order of ``hosts``;
    ``on_step`` as :func:`bench_host` takes it (called from the hosts' threads)."""
    hosts = one_or_many(hosts)
    for spec in hosts:
        Host.parse(spec)  # refuse a bad spec before copying anything anywhere
    bundles = [bundle(p, data_dir) for p in one_or_many(paths)]
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        return list(pool.map(lambda spec: bench_host(spec, bundles, options, on_step), hosts))


def result_rows(results: list[HostResult]) -> list[BenchRow]:
    """Every host's rows in host order; a host that failed shows as one failed row carrying its error."""
    rows = []
    for result in results:
        if result.error:
            rows.append(BenchRow("-", "-", "-", 0.0, status=FAILED, note=result.error, host=result.host))
        rows += result.rows
    return rows
