"""Bench rows out: a rich table, the JSON report, CSV, Markdown and a latency-against-accuracy plot.

    rows = bench_paths(["runs/demo"], resolve_target("cpu"))
    print_table(rows, "edgecnn bench on cpu")
    write_json_atomic("bench.json", report(rows, target))
    write_csv(rows, "bench.csv"); write_markdown(rows, "bench.md", "cpu"); write_plot(rows, "bench.png", "cpu")

JSON schema (``schema`` 10): ``created``, ``target`` (name, label, threads, batch, providers, emulated, ``notes``:
what the profile changed from the request, such as a capped thread count or batch, and ``cpu``: the CPU's model and
int8 instructions, :func:`edgecnn.deploy.targets.cpu_info`), ``latency`` (batch, warmup, runs or null with the
minimum time each artifact was timed for, the interleaved rounds, how FPS and the median's interval are computed),
``rows`` (one object per artifact, the fields of :class:`edgecnn.deploy.bench.BenchRow`: times in ms, sizes in KB,
accuracy and agreement in %, ``peak_rss_mb`` the peak RSS in MiB of a process that runs just that model
(:mod:`edgecnn.deploy.memory`), ``host`` empty for this machine) and ``versions`` (with ``keras-backend`` and that
backend's version when the process imported Keras: the Keras row ran on it). With ``--host``: ``target`` holds the
requested name only and ``hosts`` lists each host with the target it resolved, its versions and its ``error``
(null when it ran). Schema 10 added each row's ``ram_kb`` and ``rom_kb`` (the micro target's tensor arena and
flash) to schema 9, which added each row's ``p50_low_ms``, ``p50_high_ms`` and ``runs`` (the median's 95%
interval, the timed calls) to schema 8, which added the target's ``cpu`` to schema 7, which measures
``peak_rss_mb`` that way (schema 6 read the bench process's own high-water mark after each row); schema 6
added the target's ``batch`` to schema 5, which added the target's ``notes`` to schema 4, which added each row's
``device`` to schema 3, which added ``host`` and ``hosts``. Every file is written atomically.
"""

from __future__ import annotations

import contextlib
import csv
import io
import sys
import textwrap
from dataclasses import asdict, fields
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgecnn.common.atomic import atomic_output, write_bytes_atomic
from edgecnn.common.errors import EdgecnnError
from edgecnn.deploy.bench import MIN_TIME_S, ROUNDS, WARMUP, BenchRow
from edgecnn.deploy.targets import Target
from edgecnn.runtime.manifest import tool_versions

SCHEMA = 10
COLUMNS = (  # header, BenchRow field, format
    ("Artifact", "artifact", ""), ("Format", "format", ""), ("Precision", "precision", ""),
    ("Size (KB)", "size_kb", ".1f"), ("Accuracy (%)", "accuracy", ".2f"), ("Agree (%)", "agreement", ".2f"),
    ("Load (ms)", "load_ms", ".1f"), ("First (ms)", "first_ms", ".2f"), ("p50 (ms)", "p50_ms", ".3f"),
    ("p50 ±95%", "p50_ci", ".3f"), ("p99 (ms)", "p99_ms", ".3f"), ("Std (ms)", "std_ms", ".3f"),
    ("FPS", "fps", ".0f"), ("GMAC/s", "gmacs", ".2f"),
    ("RSS (MiB)", "peak_rss_mb", ".0f"),
)


def _cell(row: BenchRow, field: str, spec: str) -> str:
    if field == "p50_ci":  # the wider half of the median's 95% interval
        if row.p50_low_ms is None or row.p50_ms is None:
            return "-"
        return f"±{max(row.p50_high_ms - row.p50_ms, row.p50_ms - row.p50_low_ms):{spec}}"
    value = getattr(row, field)
    unmeasured = value is None or (field == "n" and row.accuracy is None)  # n is 0 where accuracy was skipped
    return "-" if unmeasured else format(value, spec)


def _status(row: BenchRow) -> str:
    return row.status + (f": {row.note}" if row.note else "")


def _test_sizes(rows: list[BenchRow]) -> set[int]:
    """How many test images the rows' accuracies were measured on."""
    return {r.n for r in rows if r.accuracy is not None}


def _columns(rows: list[BenchRow]) -> tuple:
    """COLUMNS, led by a Host column when any row ran on a --host, with a Device column when any ran off the CPU,
    and a Test n column after Accuracy when the accuracies come from test splits of different sizes."""
    columns = COLUMNS
    if len(_test_sizes(rows)) > 1:
        at = [f for _, f, _ in columns].index("accuracy") + 1
        columns = (*columns[:at], ("Test n", "n", "d"), *columns[at:])
    if any(r.device not in ("", "CPU") for r in rows):
        columns = (*columns[:3], ("Device", "device", ""), *columns[3:])
    return (("Host", "host", ""), *columns) if any(r.host for r in rows) else columns


def _titled(title: str, rows: list[BenchRow]) -> str:
    """``title``, saying how many test images the accuracies rest on where that is one number for every row."""
    sizes = _test_sizes(rows)
    return f"{title}, accuracy on {sizes.pop():,} test images" if len(sizes) == 1 else title


# the columns a narrow terminal loses first, so that the rest show whole instead of cut to "m…"
NARROW_DROP_ORDER = ("p50_ci", "peak_rss_mb", "std_ms", "first_ms", "load_ms", "gmacs", "p99_ms", "agreement",
                     "size_kb",
                     "n", "format", "device")
STATUS_MIN_WIDTH = 10  # the Status column wraps ("passed: reference" onto two lines) but keeps this many characters


def print_table(rows: list[BenchRow], title: str, console: Console | None = None) -> None:
    """One table; rows from different hosts are set apart in sections. Values and headers are never cut or wrapped
    (Status wraps): where the console is too narrow for every column, the least needed ones (``NARROW_DROP_ORDER``)
    are left out and the caption names them."""
    console = console or Console()
    unbounded = console.options.update_width(1_000_000)
    columns, hidden = list(_columns(rows)), []
    for field in NARROW_DROP_ORDER:
        needed = console.measure(_table(rows, columns, title, status=False), options=unbounded).maximum
        if needed + STATUS_MIN_WIDTH + 3 <= console.width:  # + the Status column's padding and border
            break
        hidden += [header for header, f, _ in columns if f == field]
        columns = [c for c in columns if c[1] != field]
    table = _table(rows, columns, _titled(title, rows))
    if hidden:
        table.caption = (f"left out to fit {console.width} columns: {', '.join(hidden)} "
                         "(a wider terminal, --json, --csv or --md has them)")
    console.print(table)


def _table(rows: list[BenchRow], columns: list, title: str, status: bool = True) -> Table:
    """The table of ``columns``, none of them cut or wrapped, then (with ``status``) the Status column, which
    wraps."""
    table = Table(title=Text(title, style="table.title"))
    for header, _, spec in columns:
        table.add_column(header, justify="right" if spec else "left", no_wrap=True)
    if status:
        table.add_column("Status", min_width=STATUS_MIN_WIDTH)
    for i, r in enumerate(rows):
        if i and r.host != rows[i - 1].host:
            table.add_section()
        # Text, not markup: a note such as "pip install 'edgecnn[train]'" or a file named "[x].onnx" shows as it is
        table.add_row(*(Text(_cell(r, f, spec)) for _, f, spec in columns), *([Text(_status(r))] if status else []))
    return table


def report(rows: list[BenchRow], target: Target | dict, warmup: int = WARMUP, runs: int | None = None,
           hosts: list[dict] | None = None, batch: int | None = None, min_time_s: float = MIN_TIME_S) -> dict:
    """The JSON document `edgecnn bench --json` writes and the pipeline saves as report.json."""
    document = {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": target if isinstance(target, dict) else target.to_dict(),
        "latency": {"batch": batch or (rows[0].batch if rows else 1), "warmup": warmup, "runs": runs,
                    "min_time_s": None if runs else min_time_s, "interleaved_rounds": ROUNDS,
                    "fps": "batch * 1000 / p50_ms", "p50_ci": "95% interval of the median (order statistics)"},
        "rows": [asdict(r) for r in rows],
        "versions": _versions(),
    }
    if hosts is not None:
        document["hosts"] = hosts
    return document


def _versions() -> dict[str, str]:
    """The tools' versions, and the Keras backend (with its version) when this process imported Keras."""
    versions = tool_versions()
    keras = sys.modules.get("keras")
    if keras is not None:
        backend = keras.backend.backend()
        versions["keras-backend"] = backend
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.setdefault(backend, metadata.version(backend))
    return versions


def write_csv(rows: list[BenchRow], path: str | Path) -> None:
    """Every BenchRow field, one row per artifact (``path`` ``-``: stdout)."""
    names = [f.name for f in fields(BenchRow)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names)
    writer.writeheader()
    writer.writerows(asdict(r) for r in rows)
    write_output(path, buffer.getvalue())


def write_markdown(rows: list[BenchRow], path: str | Path, title: str) -> None:
    """The table as GitHub Markdown (``path`` ``-``: stdout)."""
    columns = _columns(rows)
    headers = [h for h, _, _ in columns] + ["Status"]
    lines = [f"# {_titled(title, rows)}", "", "| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if spec else "---" for _, _, spec in columns) + "|---|"]
    lines += ["| " + " | ".join(map(_md_cell, [*(_cell(r, f, spec) for _, f, spec in columns), _status(r)])) + " |"
              for r in rows]
    write_output(path, "\n".join(lines) + "\n")


def _md_cell(text: str) -> str:
    """A cell's text on one line with its pipes escaped: a file named "a|b.onnx", or a runtime's multi-line error,
    stays in its own cell."""
    return " ".join(text.split()).replace("|", "\\|")


def write_output(path: str | Path, text: str) -> None:
    """``text`` into the file ``path``, atomically, or onto stdout where ``path`` is ``-`` (--json, --csv, --md)."""
    if str(path) == "-":
        sys.stdout.write(text)
    else:
        write_bytes_atomic(path, text.encode())


PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def plot_suffix(path: str | Path) -> str:
    """The suffix of a plot path, which picks its format; EdgecnnError unless it is one of ``PLOT_SUFFIXES``."""
    suffix = Path(path).suffix.lower()
    if suffix not in PLOT_SUFFIXES:
        raise EdgecnnError(f"{Path(path).name}: expected a {', '.join(PLOT_SUFFIXES)} file")
    return suffix


def write_plot(rows: list[BenchRow], path: str | Path, title: str) -> None:
    """p50 latency (log scale) against test accuracy, one point per artifact that has both, named in a legend
    beside the axes (labels on the points would overlap where artifacts are close); the format follows the suffix
    (see ``plot_suffix``)."""
    suffix = plot_suffix(path)
    try:
        import matplotlib
    except ImportError:
        raise EdgecnnError("--plot needs matplotlib (pip install 'edgecnn[train]' or matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    points = [r for r in rows if r.p50_ms is not None and r.accuracy is not None]
    if not points:
        raise EdgecnnError("nothing to plot: no row has both a latency and an accuracy")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.get_cmap("tab20").colors
    for i, r in enumerate(points):
        marker = {"keras": "s", "tflite": "o", "onnx": "^"}.get(r.format, "o")
        ax.scatter(r.p50_ms, r.accuracy, marker=marker, s=60, color=colors[i % len(colors)],
                   label=f"{r.artifact} ({r.size_kb:.0f} KB)")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))  # 0.1, 0.2, 0.5, 1 ms... as plain numbers
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.margins(x=0.15)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
    ax.set_xlabel(f"p50 latency per batch of {points[0].batch} (ms, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_output(path, suffix=suffix) as tmp:  # matplotlib picks the format by the suffix
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
