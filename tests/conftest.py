"""Shared fixtures: one real ``edgecnn pipeline`` run on the built-in digits, reused by the tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgecnn.cli import main
from edgecnn.data import load_dataset

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

