"""The attach socket's frames (runtime/console.py); the terminal itself is tested through a real
pseudo-terminal in tests/integration/native/test_interactive.py."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from composer.backends.native.runtime.console import (
    STDIN,
    STDIN_END,
    WINDOW,
    FrameReader,
    connectable,
    frame,
    window_payload,
)


def test_frames_come_out_as_they_complete_whatever_the_reads() -> None:
    stream = frame(STDIN, b"ls\r") + frame(WINDOW, window_payload(40, 120)) + frame(STDIN_END)
    for size in (1, 3, len(stream)):
        reader = FrameReader()
        frames = []
        for start in range(0, len(stream), size):
            frames += reader.feed(stream[start:start + size])
        assert frames == [(STDIN, b"ls\r"), (WINDOW, b"\x00\x28\x00\x78"), (STDIN_END, b"")]
        assert reader.buffer == b""


def test_window_sizes_are_clamped_to_sixteen_bits() -> None:
    assert window_payload(70000, -1) == b"\xff\xff\x00\x00"


def test_a_run_directory_too_long_for_sun_path_is_reached_through_its_descriptor(tmp_path: Path) -> None:
    run_dir = tmp_path / ("x" * 60) / ("y" * 60)
    run_dir.mkdir(parents=True)
    assert len(str(run_dir / "attach.sock")) > 108
    path, fd = connectable(str(run_dir))
    assert fd >= 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        os.close(fd)
        listener.listen(1)
        assert (run_dir / "attach.sock").is_socket()
        path, fd = connectable(str(run_dir))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(path)
            os.close(fd)
            conn, _ = listener.accept()
            client.sendall(b"x")
            assert conn.recv(1) == b"x"
            conn.close()
