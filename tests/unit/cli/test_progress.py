"""``up --quiet-pull``: only the pull's progress is dropped."""

from __future__ import annotations

import io
import json

from composer.cli.progress import JsonRenderer, PlainRenderer, QuietPull, TtyRenderer, progress_bar
from composer.events import Event, EventStatus


def test_quiet_pull_drops_pull_progress_only() -> None:
    shown: list[Event] = []

    class Sink:
        def emit(self, event: Event) -> None:
            shown.append(event)

    sink = QuietPull(Sink())
    sink.emit(Event("image:busybox", EventStatus.WORKING, "Pulling"))
    sink.emit(Event("layer:abc", EventStatus.WORKING, "Downloading", parent_id="image:busybox"))
    sink.emit(Event("image:busybox", EventStatus.DONE, "Pulled"))
    sink.emit(Event("image:busybox", EventStatus.ERROR, "Error", "manifest unknown"))
    sink.emit(Event("container:p-web-1", EventStatus.DONE, "Started"))
    assert [event.text for event in shown] == ["Error", "Started"]


# --- the tty renderer: a fake terminal (its size) and a fake clock make every frame deterministic ---

class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frames(output: str) -> list[list[str]]:
    """The frames a TtyRenderer wrote: each redraw starts at column 0 after a cursor-up (or at the
    start), one erased row per line."""
    import re

    return [[row.removeprefix("\x1b[2K") for row in frame.split("\n") if row]
            for frame in re.split(r"\x1b\[\d+F", output) if frame]


def tty(width: int = 120, height: int = 40) -> tuple[TtyRenderer, io.StringIO, Clock]:
    stream = io.StringIO()
    clock = Clock()
    return TtyRenderer(stream, size=lambda: (width, height), clock=clock), stream, clock


def layer(text: str, current: int | None = None, status: EventStatus = EventStatus.WORKING,
          name: str = "layer:aaaaaaaaaaaa", total: int = 45_600_000) -> Event:
    return Event(name, status, text, parent_id="image:web", current=current, total=total)


def test_progress_bar_is_jsonmessages() -> None:
    # docker's jsonmessage (and so v2's layer lines): one '=' per 2 %, a '>' head, go-units sizes
    assert progress_bar(12_300_000, 45_600_000) == "[" + "=" * 13 + ">" + " " * 37 + "]   12.3MB/45.6MB"
    assert progress_bar(32_768, 1_027_821) == "[=>" + " " * 49 + "]  32.77kB/1.028MB"
    assert progress_bar(1_027_821, 1_027_821) == "[" + "=" * 50 + ">]  1.028MB/1.028MB"
    assert progress_bar(0, 41_956_044) == "[>" + " " * 50 + "]       0B/41.96MB"
    # narrowed to the room there is, and only the bytes when a bar would not fit
    assert progress_bar(12_300_000, 45_600_000, width=40) == "[" + "=" * 5 + ">" + " " * 16 + "]   12.3MB/45.6MB"
    assert len(progress_bar(12_300_000, 45_600_000, width=40)) == 40
    assert progress_bar(12_300_000, 45_600_000, width=20) == "12.3MB/45.6MB"
    assert progress_bar(50, 40) == "[" + "=" * 50 + ">]      50B"  # past the total: no total, as docker


def test_a_layer_shows_its_bytes_while_downloading_and_extracting_not_before_or_after() -> None:
    renderer, stream, clock = tty()
    renderer.emit(Event("image:web", EventStatus.WORKING, "Pulling"))
    renderer.emit(layer("Waiting"))
    clock.now += 1
    renderer.emit(layer("Downloading", 12_300_000))
    clock.now += 1
    renderer.emit(layer("Extracting", 45_600_000))
    clock.now += 1
    renderer.emit(layer("Pull complete", 45_600_000, EventStatus.DONE))
    shown = frames(stream.getvalue())
    assert shown[1] == [" ⠿ Image web [⠀]      0B / 45.6MB  Pulling", "   ⠿ Layer aaaaaaaaaaaa  Waiting"]
    assert shown[2] == [" ⠿ Image web [⣀]  12.3MB / 45.6MB  Pulling",
                        "   ⠿ Layer aaaaaaaaaaaa  Downloading [" + "=" * 13 + ">" + " " * 37 + "]   12.3MB/45.6MB"]
    assert shown[3][1] == "   ⠿ Layer aaaaaaaaaaaa  Extracting [" + "=" * 50 + ">]   45.6MB/45.6MB"
    assert shown[4] == [" ⠿ Image web [⣿]  45.6MB / 45.6MB  Pulling", "   ✔ Layer aaaaaaaaaaaa  Pull complete"]


def test_the_image_line_adds_its_layers_and_waits_for_every_size() -> None:
    renderer, stream, clock = tty()
    renderer.emit(Event("image:web", EventStatus.WORKING, "Pulling"))
    renderer.emit(layer("Downloading", 1_000_000, total=2_000_000))
    renderer.emit(Event("layer:bbbbbbbbbbbb", EventStatus.WORKING, "Pulling fs layer", parent_id="image:web"))
    assert frames(stream.getvalue())[-1][0] == " ⠿ Image web [⣤⠀]  Pulling"  # one size unknown: no bytes
    renderer.emit(layer("Downloading", 3_000_000, name="layer:bbbbbbbbbbbb", total=4_000_000))
    assert frames(stream.getvalue())[-1][0] == " ⠿ Image web [⣤⣶]     4MB / 6MB  Pulling"
    clock.now += 1
    renderer.emit(layer("Extracting", 500_000, total=2_000_000))  # extraction starts again at 0: the sum does not
    assert frames(stream.getvalue())[-1][0] == " ⠿ Image web [⣀⣶]     4MB / 6MB  Pulling"
    renderer.emit(Event("layer:bbbbbbbbbbbb", EventStatus.WORKING, "Download complete", parent_id="image:web"))
    assert frames(stream.getvalue())[-1][0] == " ⠿ Image web [⣀⣶]     4MB / 6MB  Pulling"  # dockerd's: no counts
    renderer.emit(Event("image:web", EventStatus.DONE, "Pulled"))
    assert frames(stream.getvalue())[-1][0] == " ✔ Image web  Pulled"


def test_counts_alone_redraw_at_most_ten_times_a_second_changes_at_once() -> None:
    renderer, stream, clock = tty()
    renderer.emit(Event("image:web", EventStatus.WORKING, "Pulling"))
    renderer.emit(layer("Downloading", 0))
    drawn = len(frames(stream.getvalue()))
    for step in range(1, 100):  # 100 chunks in 0.25 s
        clock.now += 0.0025
        renderer.emit(layer("Downloading", step * 100_000))
    shown = frames(stream.getvalue())[drawn:]
    assert 2 <= len(shown) <= 3, shown  # one per 0.1 s
    renderer.emit(layer("Download complete", 45_600_000))  # a new text: drawn now, however soon
    assert frames(stream.getvalue())[-1][1].startswith("   ⠿ Layer aaaaaaaaaaaa  Download complete [=====")


def test_rows_fit_the_terminal_width_and_children_its_height() -> None:
    renderer, stream, _ = tty(width=52, height=3)
    renderer.emit(Event("image:web", EventStatus.WORKING, "Pulling"))
    renderer.emit(layer("Downloading", 12_300_000))
    shown = frames(stream.getvalue())[-1]
    assert shown[1] == "   ⠿ Layer aaaaaaaaaaaa  Downloading 12.3MB/45.6MB"  # no room for a bar
    assert all(len(row) < 52 for row in shown)
    renderer.emit(layer("Waiting", name="layer:bbbbbbbbbbbb"))
    renderer.emit(Event("container:web-1", EventStatus.DONE, "Created", details="x" * 80))
    shown = frames(stream.getvalue())[-1]  # 4 rows would not fit 3 lines: the parents alone, cut to 51 cells
    assert shown == [" ⠿ Image web [⣀⠀]  12.3MB / 91.2MB  Pulling", " ✔ Container web-1  Created " + "x" * 23]


def test_json_events_carry_v2s_current_total_and_percent() -> None:
    stream = io.StringIO()
    renderer = JsonRenderer(stream)
    renderer.emit(layer("Waiting"))
    renderer.emit(layer("Downloading", 12_300_000))
    renderer.emit(Event("container:web-1", EventStatus.DONE, "Started"))
    waiting, downloading, started = (json.loads(line) for line in stream.getvalue().splitlines())
    assert waiting == {"id": "layer:aaaaaaaaaaaa", "status": "working", "text": "Waiting", "parent_id": "image:web",
                       "total": 45_600_000}
    assert (downloading["current"], downloading["total"], downloading["percent"]) == (12_300_000, 45_600_000, 26)
    assert set(started) == {"id", "status", "text"}


def test_plain_lines_do_not_repeat_for_a_count_alone() -> None:
    stream = io.StringIO()
    renderer = PlainRenderer(stream)
    renderer.emit(layer("Downloading", 0))
    renderer.emit(layer("Downloading", 1_000))
    renderer.emit(layer("Download complete", 45_600_000))
    renderer.emit(Event("build:web", EventStatus.WORKING, "#1 step"))
    renderer.emit(Event("build:web", EventStatus.WORKING, "#1 step"))  # output lines are all kept
    assert stream.getvalue().splitlines() == [" Layer aaaaaaaaaaaa  Downloading",
                                              " Layer aaaaaaaaaaaa  Download complete",
                                              " Build web  #1 step", " Build web  #1 step"]


def test_a_count_of_steps_is_not_drawn_as_bytes() -> None:
    assert progress_bar(3, 10, width=40, units="steps") == "[" + "=" * 7 + ">" + " " * 19 + "] 3/10 steps"
    renderer, stream, _ = tty()
    renderer.emit(Event("image:web", EventStatus.WORKING, "Building"))
    renderer.emit(Event("build:web", EventStatus.WORKING, "Step 3/10 : RUN make", parent_id="image:web",
                        current=3, total=10, units="steps"))
    image, step = frames(stream.getvalue())[-1]
    assert image == " ⠿ Image web [⣀]  Building"  # a glyph, and no sum of bytes
    assert step.endswith("Step 3/10 : RUN make [" + "=" * 15 + ">" + " " * 35 + "] 3/10 steps")
