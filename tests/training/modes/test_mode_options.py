"""A mode's options are its own config section (TRL's GKDConfig(SFTConfig) pattern): not fields of every mode,
refused in one line with another mode, grouped under their modes in `train --help`, and the run's identity as before."""

from pathlib import Path

import pytest

from tokendistill.cli import build_parser, main
from tokendistill.config import TrainConfig
from tokendistill.errors import UserError
from tokendistill.options import field_names
from tokendistill.training.checkpoints import run_identity
from tokendistill.training.modes import MODES, AlignConfig, KDConfig, train_config
from tokendistill.training.trainer import train

COMMON = {"task": "keywords", "student": "s", "output": "o"}
FLAT_IDENTITIES = ["5d95c177bbe6b435", "6cda95caaebc8252", "e1a3584a0cbebf9f", "5e116014174a22ce"]


def test_a_modes_options_are_not_fields_of_every_mode() -> None:
    assert not {"teacher", "kd_weight", "kd_temperature", "align_weight"} & field_names(TrainConfig)
    assert MODES.get("kd").config is MODES.get("multitask_kd").config is KDConfig
    assert MODES.get("align").config is AlignConfig and MODES.get("standard").config is TrainConfig
    assert type(train_config({**COMMON, "mode": "kd", "teacher": "t", "kd_weight": 2.0})) is KDConfig
    assert type(train_config({**COMMON, "mode": "multitask"})) is TrainConfig


@pytest.mark.parametrize(("mode", "option", "owners"), [("standard", "kd_weight", "kd, multitask_kd"),
                                                        ("kd", "align_weight", "align"),
                                                        ("multitask", "teacher", "kd, multitask_kd")])
def test_another_modes_option_is_refused_in_one_line(mode: str, option: str, owners: str) -> None:
    with pytest.raises(UserError, match=f"--{option.replace('_', '-')} is an option of --mode {owners}, not of "
                                        f"--mode {mode}"):
        train_config({**COMMON, "mode": mode, option: 1.0})


def test_the_cli_refuses_another_modes_flag_before_anything_loads(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--task", "keywords", "--student", str(tmp_path / "none"), "--output",
                 str(tmp_path / "s"), "--kd-weight", "2"])
    assert code == 2
    assert "--kd-weight is an option of --mode kd, multitask_kd, not of --mode standard" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_kd_needs_its_teacher() -> None:
    with pytest.raises(UserError, match="missing required option.*--teacher"):
        train_config({**COMMON, "mode": "kd"})


def test_the_python_api_with_the_base_config_for_a_mode_with_options_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="mode 'kd' takes its options as a KDConfig"):
        train(TrainConfig(task="keywords", student=str(tmp_path / "none"), output=str(tmp_path / "s"), mode="kd"))
    assert not (tmp_path / "s").exists()


def test_train_help_groups_each_modes_options_under_its_modes() -> None:
    parser = build_parser(with_names=False, command="train")
    train_parser = next(action for action in parser._subparsers._group_actions  # type: ignore[union-attr]
                        if action.choices and "train" in action.choices).choices["train"]
    titles = {group.title: {a.dest for a in group._group_actions} for group in train_parser._action_groups}
    assert titles["--mode kd, multitask_kd options"] == {"teacher", "kd_weight", "kd_temperature"}
    assert titles["--mode align options"] == {"align_weight"}


def test_a_runs_identity_is_what_it_was_when_the_options_were_flat() -> None:
    # Hashes from the flat TrainConfig (commit 2283a72), where kd_weight, kd_temperature, align_weight and teacher
    # were fields of every mode: moving them into their modes' sections changes no run's identity.
    standard = train_config({**COMMON, "mode": "standard"})
    kd = train_config({**COMMON, "mode": "kd", "teacher": "t"})
    heavier = train_config({**COMMON, "mode": "kd", "teacher": "t", "kd_weight": 2.0})
    align = train_config({**COMMON, "mode": "align", "rationales": "r"})
    assert [run_identity(c) for c in (standard, kd, heavier, align)] == FLAT_IDENTITIES
