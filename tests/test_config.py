"""Run identity: which settings make a different run, across versions that add options."""

import json

from tokendistill.config import ExtractConfig, differing_keys
from tokendistill.options import field_defaults


def test_an_option_added_at_its_default_keeps_old_runs_resumable() -> None:
    defaults = field_defaults(ExtractConfig)
    held = {"task": "cqa", "top_k": 10.0}  # written before chat_template existed
    assert differing_keys(held, {"task": "cqa", "top_k": 10.0, "chat_template": False}, defaults) == []
    assert differing_keys(held, {"task": "cqa", "top_k": 10.0, "chat_template": True}, defaults) == ["chat_template"]
    assert differing_keys(held, {"task": "cqa", "top_k": 5.0}, defaults) == ["top_k"]


def test_removed_options_are_ignored_and_tuples_equal_lists() -> None:
    assert differing_keys({"gone": 1, "a": [1, 2]}, {"a": (1, 2)}, {}) == []


def test_an_option_added_at_its_default_keeps_every_identity_hash(monkeypatch, tmp_path) -> None:
    """A student's identity and a rationale folder's hash (the fingerprints a grid's later stages compare) do not
    change when a later version adds an option at its default: a grid half done stays valid."""
    import dataclasses

    from tokendistill.config import TrainConfig
    from tokendistill.rationales import MANIFEST, RationaleStore
    from tokendistill.training import checkpoints as trainer  # run_identity lives there

    @dataclasses.dataclass(kw_only=True)
    class Later(TrainConfig):
        future_option: int = 3

    before = trainer.run_identity(TrainConfig(task="keywords", student="s", output="o"))
    monkeypatch.setattr(trainer, "TrainConfig", Later)
    assert trainer.run_identity(Later(task="keywords", student="s", output="o")) == before
    assert trainer.run_identity(Later(task="keywords", student="s", output="o", future_option=4)) != before

    identity = {"task": "cqa", "top_k": 10.0}
    RationaleStore.open(tmp_path / "a", identity, defaults={"chat_template": False})
    RationaleStore.open(tmp_path / "b", {**identity, "chat_template": False}, defaults={"chat_template": False})
    RationaleStore.open(tmp_path / "c", {**identity, "chat_template": True}, defaults={"chat_template": False})
    hashes = [json.loads((tmp_path / name / MANIFEST).read_text())["config_hash"] for name in "abc"]
    assert hashes[0] == hashes[1] != hashes[2]


def test_a_run_that_trains_as_version_2_keeps_its_version_2_identity() -> None:
    """max_grad_norm came with identity version 3 at a default that trains differently (clipping at 1.0): a
    version-2 folder resumes only for a run that pins the old behaviour (0), never for the new default."""
    import dataclasses

    from tokendistill.config import TrainConfig, config_hash
    from tokendistill.options import to_dict
    from tokendistill.training.checkpoints import _NOT_IDENTITY, run_identity

    config = TrainConfig(task="keywords", student="s", output="o", steps=7)
    defaults = field_defaults(TrainConfig)
    # The hash version 2 computed: the settings away from their defaults, max_grad_norm unknown.
    version_2 = config_hash({"identity_version": 2, **{
        key: value for key, value in to_dict(config).items()
        if key not in _NOT_IDENTITY and key != "max_grad_norm" and (key not in defaults or value != defaults[key])}})
    assert run_identity(dataclasses.replace(config, max_grad_norm=0.0)) == version_2
    assert run_identity(config) != version_2  # clipping at the default 1.0: another run
    assert run_identity(dataclasses.replace(config, max_grad_norm=0.5)) not in (version_2, run_identity(config))


def test_a_folder_trained_before_version_3_resumes_only_at_the_old_behaviour(tmp_path) -> None:
    """The folder check (settings compared one by one) applies the same rule as the identity: a student whose
    recorded config lacks max_grad_norm trained without clipping, so a run pinned to 0 finds it done and a run
    at the new default (1.0) is another run."""
    import dataclasses
    import json

    import pytest

    from tokendistill.config import TrainConfig
    from tokendistill.errors import UserError
    from tokendistill.options import to_dict
    from tokendistill.training.checkpoints import AlreadyTrained, input_fingerprints, prepare_output

    config = TrainConfig(task="keywords", student="s", output=str(tmp_path), steps=7, max_grad_norm=0.0)
    old_config = {key: value for key, value in to_dict(config).items() if key != "max_grad_norm"}
    (tmp_path / "tokendistill.json").write_text(json.dumps({"config": old_config,
                                                            "inputs": input_fingerprints(config)}))
    with pytest.raises(AlreadyTrained):
        prepare_output(tmp_path, config)
    with pytest.raises(UserError, match="differs in: max_grad_norm"):
        prepare_output(tmp_path, dataclasses.replace(config, max_grad_norm=1.0))


def test_a_config_is_built_from_a_mapping_through_the_package() -> None:
    import pytest

    import tokendistill
    from tokendistill.errors import UserError

    config = tokendistill.build(tokendistill.TrainConfig, {"task": "keywords", "student": "s", "output": "o",
                                                           "steps": 3})
    assert isinstance(config, tokendistill.TrainConfig) and config.steps == 3
    with pytest.raises(UserError, match="unknown option"):
        tokendistill.build(tokendistill.TrainConfig, {"task": "keywords", "student": "s", "output": "o", "stepz": 3})
