"""Shared fixtures: one real ``edgecnn pipeline`` run on the built-in digits, reused by the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.text import Text

from edgecnn.cli import main
from edgecnn.workstation.data import load_dataset

EPOCHS = "12"


def run_cli(args: list[str]) -> int:
    """Run the CLI in this process; return its exit code."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


def run_subprocess(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m edgecnn ARGS`` as a user would; capture text output."""
    return subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True,
                          timeout=300, **kwargs)


def run_in_terminal(args: list[str], columns: int = 80) -> tuple[str, int]:
    """Run ``python -m edgecnn ARGS`` on a pseudo-terminal ``columns`` wide, as a user at an 80-column SSH session
    would; return what it showed (stdout and stderr, colours removed) and the exit code."""
    leader, follower = os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "edgecnn", *args], stdin=subprocess.DEVNULL, stdout=follower,
                               stderr=follower, env={**os.environ, "COLUMNS": str(columns), "TERM": "xterm"})
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the program ended and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return Text.from_ansi(shown.decode().replace("\r\n", "\n")).plain, process.wait(timeout=300)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pipeline") / "run"
    code = run_cli(["pipeline", "--out", str(out), "--epochs", EPOCHS, "--runs", "30", "--warmup", "3"])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def report(run_dir) -> dict:
    return json.loads((run_dir / "report.json").read_text())



def pytest_collection_modifyitems(items):
    """Tests that start an OpenSSH server (the `bench --host` fleet) belong to the slow tier."""
    for item in items:
        if {"sshd", "sshd_without_sftp"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def assert_one_error_line(stderr: str, *fragments: str) -> None:
    """``stderr`` is one line, "error: ...", holding each of ``fragments`` (the file named, the reason), and no
    traceback: the parts that matter, not the sentence's wording."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr and all(f in lines[0] for f in fragments), stderr
