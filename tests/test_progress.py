"""The transient progress displays: what a terminal sees, and that logs and pipes see nothing."""

import io

from rich.console import Console
from rich.text import Text

from edgecnn.common.progress import artifact_progress, frame_progress, host_progress


def _terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=100)


def test_the_artifact_bar_names_the_file_and_the_count_on_a_terminal_only():
    screen = _terminal()
    with artifact_progress("export", screen) as on_start:
        on_start(1, 5, "model_int8.tflite")
    assert "export model_int8.tflite" in screen.file.getvalue() and "1/5" in screen.file.getvalue()
    log = Console(file=io.StringIO(), force_terminal=False)
    with artifact_progress("bench", log) as on_start:
        assert on_start is None
    assert log.file.getvalue() == ""


def test_each_host_gets_a_line_with_its_own_step_and_a_mark_once_it_ends():
    screen = _terminal()
    hosts = ["pi@pi4.local", "pi@pi5.local:2222"]
    with host_progress(hosts, screen) as on_step:
        on_step(hosts[0], "running edgecnn bench")
        on_step(hosts[1], "failed")
    last = screen.file.getvalue().rsplit("\r", 1)[0]  # the last frame drawn before the display went away
    lines = [line for line in Text.from_ansi(last).plain.splitlines() if "pi@" in line][-2:]
    assert lines[0].split()[1:4] == ["pi@pi4.local", "running", "edgecnn"]  # still working: a spinner leads
    assert lines[0].split()[0] != "•"
    assert lines[1].split()[:3] == ["•", "pi@pi5.local:2222", "failed"]  # host names padded to one width
    assert lines[0].index("running") == lines[1].index("failed")
    log = Console(file=io.StringIO(), force_terminal=False)
    with host_progress(hosts, log) as on_step:
        assert on_step is None
    assert log.file.getvalue() == ""


def _frames_shown(*calls) -> str:
    """What a terminal shows last after these on_frame calls, made within a few microseconds."""
    screen = _terminal()
    with frame_progress(screen) as on_frame:
        for call in calls:
            on_frame(*call)
    return Text.from_ansi(screen.file.getvalue().rsplit("\r", 1)[0]).plain


def test_the_frame_bar_counts_frames_and_shows_the_label_as_written():
    shown = _frames_shown((1, 60, [("[bold]cat", 0.97), ("dog", 0.02)]))
    assert "1/60" in shown and "top: [bold]cat (0.97)" in shown  # a label is never read as rich markup
    # within 0.1 s of the last update a frame is not shown (the loop keeps its speed), but the last frame always is
    assert "1/60" in _frames_shown((1, 60, [("3", 0.9)]), (2, 60, [("3", 0.9)]))
    assert "60/60 0:00:00 top: 7 (0.99)" in _frames_shown((1, 60, [("3", 0.9)]), (60, 60, [("7", 0.99)]))
    assert "5/? " in _frames_shown((5, None, [("3", 0.9)]))  # a camera: no total
    with frame_progress(Console(file=io.StringIO(), force_terminal=False)) as on_frame:
        assert on_frame is None
