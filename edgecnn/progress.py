"""A transient progress bar over a list of artifacts, for the verbs that work through them one at a time.

    with artifact_progress("bench") as on_start:           # on stderr; None where stderr is not a terminal
        rows = bench_paths(["runs/demo"], resolve_target("cpu"), on_start=on_start)
    with artifact_progress("export") as on_start:
        export_run("runs/demo", on_start=on_start)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

OnStart = Callable[[int, int, str], None]  # (index of the artifact starting, how many in all, its file name)


@contextlib.contextmanager
def artifact_progress(verb: str, console: Console | None = None) -> Iterator[OnStart | None]:
    """A bar reading "VERB FILE ━━━ 2/5 0:00:08", on stderr unless ``console`` says otherwise, gone once the work is
    done; yields the ``on_start`` to call before each artifact, or None where the console is not a terminal (a log
    or a pipe gets no bar, and not the blank line rich would leave)."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (TextColumn(f"{verb} {{task.fields[file]}}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(verb, total=None, file="starting")

        def on_start(index: int, total: int, file: str) -> None:
            bar.update(task, completed=index, total=total, file=file)

        yield on_start
