"""A split's size where it is known without reading its rows: extract's progress bar shows a total and an ETA."""

from pathlib import Path

import pytest

from tokendistill.tasks import get_task, load_examples, split_size


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("text,label\n" + "".join(f"row number {i},{'ab'[i % 2]}\n" for i in range(30)))
    return path


@pytest.mark.parametrize(("split", "limit"), [("train", None), ("train", 7), ("train[5:12]", None),
                                              ("train[25:40]", None), ("train[5:]", 100)])
def test_the_size_is_what_the_examples_count(data: Path, split: str, limit: int | None) -> None:
    task = get_task("text", input_column="text", label_column="label")
    assert split_size(task, split, str(data), limit) == len(load_examples(task, split, str(data), limit))


def test_rows_carved_by_content_have_no_size_without_reading(data: Path) -> None:
    task = get_task("text", input_column="text", label_column="label")
    assert split_size(task, "train", str(data), test_fraction=0.2) is None


def test_extracts_bar_has_a_total(data: Path, tmp_path: Path, t5_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tokendistill.attribution.extract as extract_module
    from tokendistill.cli import main

    totals = []
    real = extract_module.tqdm

    def recording(*args, **kwargs):
        totals.append(kwargs.get("total"))
        return real(*args, **kwargs)

    monkeypatch.setattr(extract_module, "tqdm", recording)
    assert main(["extract", "--task", "text", "--input-column", "text", "--label-column", "label", "--data",
                 str(data), "--teacher", str(t5_dir), "--output", str(tmp_path / "r"), "--limit", "12",
                 "--max-new-tokens", "2", "--device", "cpu"]) == 0
    assert totals == [12]
