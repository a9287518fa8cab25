"""Transient progress displays: a bar over a list of artifacts, for the verbs that work through them one at a
time, a line per host for a bench over SSH, and a bar over many quick items: the frames of `edgecnn live`, the
images of a folder dataset or of `edgecnn predict`, decoded on every core.

    with artifact_progress("bench") as on_start:           # on stderr; None where stderr is not a terminal
        rows = bench_paths(["runs/demo"], resolve_target("cpu"), on_start=on_start)
    with artifact_progress("export") as on_start:
        export_run("runs/demo", on_start=on_start)
    with host_progress(["pi@pi4.local", "pi@pi5.local"]) as on_step:
        results = bench_hosts(["pi@pi4.local", "pi@pi5.local"], ["models/mnist"], options, on_step=on_step)
    with frame_progress() as on_frame:
        summary = run_live(clf, "digits.mp4", display=False, on_frame=on_frame)
    images = list(map_on_cores(read, paths, "reading images"))  # read() on every core, a bar over the paths
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

OnStart = Callable[[int, int, str], None]  # (index of the artifact starting, how many in all, its file name)
OnStep = Callable[[str, str], None]  # (host spec, the step it starts: "connecting" ... "done" or "failed")
FINAL_STEPS = ("done", "failed")
OnFrame = Callable[[int, int | None, list], None]  # (frames done, frames in all or None, the last frame's top-k)
OnCount = Callable[..., None]  # (items done, items in all or None, note="")


@contextlib.contextmanager
def artifact_progress(verb: str, console: Console | None = None) -> Iterator[OnStart | None]:
    """A bar reading "VERB FILE ━━━ 2/5 0:00:08", on stderr unless ``console`` says otherwise, gone once the work is
    done; yields the ``on_start`` to call before each artifact, or None where the console is not a terminal (a log
    or a pipe gets no bar, and not the blank line rich would leave)."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (TextColumn(f"{verb} {{task.fields[file]}}", markup=False), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # a file name is text, never markup
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(verb, total=None, file="starting")

        def on_start(index: int, total: int, file: str) -> None:
            bar.update(task, completed=index, total=total, file=file)

        yield on_start


@contextlib.contextmanager
def host_progress(hosts: list[str], console: Console | None = None) -> Iterator[OnStep | None]:
    """One line per host, "⠋ pi@pi4.local  running edgecnn bench  0:00:12", each with its own clock, which stops at
    "done" or "failed"; on stderr unless ``console`` says otherwise, gone at the end. Yields the ``on_step`` that
    :func:`edgecnn.deploy.remote.bench_hosts` takes (safe from its threads), or None where the console is not a
    terminal."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    width = max(map(len, hosts))
    columns = (SpinnerColumn(finished_text="•"), TextColumn(f"{{task.fields[host]:<{width}}}"),
               TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as lines:
        tasks = {spec: lines.add_task("preparing", total=1, host=spec) for spec in hosts}

        def on_step(spec: str, step: str) -> None:
            lines.update(tasks[spec], description=step, completed=step in FINAL_STEPS)
            if step in FINAL_STEPS:
                lines.stop_task(tasks[spec])

        yield on_step


@contextlib.contextmanager
def count_progress(label: str, console: Console | None = None) -> Iterator[OnCount | None]:
    """A bar "LABEL ━━━ 42/60 0:00:01 NOTE" over many quick items (a total of None counts up); on stderr unless
    ``console`` says otherwise, gone at the end. Yields ``on_count(done, total, note="")``, or None where the
    console is not a terminal. An item can take 0.3 ms, so the bar is updated at most 10 times a second (and always
    at the last item) and redrawn 4 times: updated at every frame, it cost a 3,400 FPS `live` loop 8% of its FPS;
    this way, under 2% (three alternating runs, 1,500 frames each)."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[note]}", markup=False))  # notes carry the user's labels: never markup
    with Progress(*columns, console=console, transient=True, refresh_per_second=4) as bar:
        task = bar.add_task(label, total=None, note="")
        last = 0.0

        def on_count(done: int, total: int | None, note: str = "") -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= 0.1 or done == total:
                last = now
                bar.update(task, completed=done, total=total, note=note)

        yield on_count


@contextlib.contextmanager
def frame_progress(console: Console | None = None) -> Iterator[OnFrame | None]:
    """:func:`count_progress` over the frames of a video or folder, "live ━━━ 42/60 0:00:01 top: 7 (0.98)" (a
    camera counts up with no total). Yields the ``on_frame`` that :func:`edgecnn.deploy.live.run_live` takes, or None
    where the console is not a terminal."""
    with count_progress("live", console) as on_count:
        if on_count is None:
            yield None
            return

        def on_frame(done: int, total: int | None, top: list) -> None:
            on_count(done, total, "top: {} ({:.2f})".format(*top[0]))

        yield on_frame


def map_on_cores(fn: Callable, items: list, label: str, console: Console | None = None) -> Iterator:
    """``fn(item)`` for each item, in order, computed on one worker thread per core (for work that releases the GIL,
    as OpenCV's decoding and resizing do), with a :func:`count_progress` bar named ``label``. Leaving the loop early
    (an error, Ctrl-C) drops the items still queued: only those being computed are waited for."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool, count_progress(label, console) as on_count:
        for done, result in enumerate(pool.map(fn, items), 1):
            if on_count:
                on_count(done, len(items))
            yield result
