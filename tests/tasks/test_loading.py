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


def test_a_bad_local_file_gets_the_parsers_reason_and_no_library_noise(tmp_path: Path,
                                                                       capfd: pytest.CaptureFixture[str]) -> None:
    import logging

    from tokendistill.errors import UserError

    # Whatever another test or the user's code configured, datasets' own handler must not print its traceback.
    logging.getLogger("datasets").setLevel(logging.DEBUG)
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text('{"input": "hello there", "label": "a"}\n')
    bad.write_text('{"input": "a", "label": "b"}\n{"input": broken\n')
    assert load_examples(get_task("text"), "train", str(good))
    with pytest.raises(UserError, match="cannot parse .*bad.jsonl: JSON parse error"):
        load_examples(get_task("text"), "train", str(bad))
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Generating" not in captured.err, captured.err
    assert logging.getLogger("datasets").level == logging.DEBUG  # restored
