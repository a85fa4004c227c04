"""Reading data files: local files stay local."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokendistill.tasks import get_task, load_examples


def test_a_local_file_is_read_without_touching_the_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:1])
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    for name, text in (("rows.csv", "input,label\nhello there,a\ngood bye,b\n"),
                       ("rows.jsonl", '{"input": "hello there", "label": "a"}\n')):
        (tmp_path / name).write_text(text)
        assert load_examples(get_task("text"), "train", str(tmp_path / name))
    assert attempts == []
