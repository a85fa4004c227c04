"""The command line: each command builds a stage's config and calls that stage; nothing else lives here."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any

from tokendistill.arguments import add_arguments, from_arguments
from tokendistill.artefacts import TEACHER_CHECK_FOLDER  # the command is named as the folder a grid gives it
from tokendistill.config import EvaluateConfig, ExtractConfig, TrainConfig
from tokendistill.errors import UserError


def _extract(config: ExtractConfig) -> None:
    from tokendistill.attribution.extract import extract

    folder = extract(config)
    from tokendistill.rationales import extraction_summary

    print(extraction_summary(folder))


def _train(config: TrainConfig) -> None:
    from accelerate import PartialState

    from tokendistill.student import training_summary
    from tokendistill.training import train

    folder = train(config)
    if PartialState().is_main_process:  # under `accelerate launch`, the main process writes the record and says it
        print(training_summary(folder))


def _evaluate(config: EvaluateConfig) -> None:
    from tokendistill.evaluation import evaluate, evaluation_summary

    print(evaluation_summary(evaluate(config), config.output))


def _analyze(config: Any) -> None:
    from tokendistill.analysis import analyze, overlap_table

    analysis = analyze(config)
    if any(result["answer_overlap"]["gold"]["all"]["answer_in_input"] for result in analysis["sets"]):
        print(overlap_table(analysis["sets"]))
    else:
        print("the answers never occur in these inputs: which words and input parts the teacher picks are in the "
              "analysis files")
    print(f"analysis: {analysis['output']}")


def _report(config: Any) -> None:
    from tokendistill.report import build_report

    print(f"report: {build_report(config)}")


def _run(config: Any) -> None:
    from tokendistill.experiment import run_experiment

    print(f"grid: {run_experiment(config)}")


def _predict(config: Any) -> None:
    from tokendistill.predict import predict_command

    for answer in predict_command(config):
        print(answer)


def _explain(config: Any) -> None:
    from tokendistill.explain import explain_command

    print(explain_command(config))


def _push(config: Any) -> None:
    from tokendistill.hub import push_command

    print(push_command(config))


def _results(config: Any) -> None:
    from tokendistill.results import results_command

    print(results_command(config))


def _faithfulness(config: Any) -> None:
    from tokendistill.attribution.faithfulness import faithfulness, format_table

    result = faithfulness(config)
    print(format_table(result["results"]))
    print(f"faithfulness: {result['output']}")


def _teacher_eval(config: Any) -> None:
    from tokendistill.teacher_eval import format_result, teacher_eval

    print(format_result(teacher_eval(config)))


def _demo(config: Any) -> None:
    from tokendistill.demo import run_demo

    run_demo(config)


def _commands() -> list[tuple[str, str, str, Callable[[Any], None]]]:
    """(name, help, where its config class lives, handler): the class is imported only for the command run, as
    several live beside torch code."""
    return [
        ("extract", "teacher attribution: top-k rationale words per example", "config:ExtractConfig", _extract),
        (TEACHER_CHECK_FOLDER, "the teacher's accuracy by generation and by scoring the choices",
         "teacher_eval:TeacherEvalConfig", _teacher_eval),
        ("explain", "the teacher's answer to one input and the words it rests on, highlighted",
         "explain:ExplainConfig", _explain),
        ("train", "train a student in one of the training modes (--mode)", "training.modes:TRAIN_CONFIGS", _train),
        ("evaluate", "score a student on a split", "config:EvaluateConfig", _evaluate),
        ("predict", "a trained student answers the given inputs, as evaluate reads it", "predict:PredictConfig",
         _predict),
        ("push", "a student (model) or rationale folder (dataset) to the Hugging Face hub, with its card",
         "hub:PushConfig", _push),
        ("run", "an experiment grid from a YAML file (resumable)", "experiment:RunConfig", _run),
        ("results", "the results table of a grid folder", "results:ResultsConfig", _results),
        ("analyze", "what the teacher's words contain, against random words", "analysis:AnalyzeConfig", _analyze),
        ("faithfulness", "comprehensiveness and sufficiency of the top-k words vs random-k",
         "attribution.faithfulness:FaithfulnessConfig", _faithfulness),
        ("report", "one self-contained HTML report of a run folder", "report:ReportConfig", _report),
        ("demo", "the whole pipeline offline on a generated task, in a few minutes", "demo:DemoConfig", _demo),
    ]


def _config_class(where: str) -> Any:
    import importlib

    module, _, name = where.partition(":")
    return getattr(importlib.import_module(f"tokendistill.{module}"), name)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes in one line, like every other mistake (argparse prints the whole usage first)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"tokendistill: error: {message} (see `{self.prog} --help`)\n")


def environment_error(error: OSError) -> str:
    """One line for a failure of the machine rather than of the input: which file, what, and what to do."""
    where = f" {error.filename}" if error.filename else ""
    fixes = {
        errno.ENOSPC: "free some space and run the same command again: finished work is kept and resumed",
        errno.EDQUOT: "free some space and run the same command again: finished work is kept and resumed",
        errno.EACCES: "choose a folder you may write to (or fix its permissions)",
        errno.EPERM: "choose a folder you may write to (or fix its permissions)",
        errno.EROFS: "the file system is read-only: choose another --output",
        errno.ENOTDIR: "a path on the way is a file, not a folder: choose another path",
        errno.EISDIR: "a folder stands where a file is expected: choose another path",
        errno.EEXIST: "something else stands at that path: choose another path",
    }
    fix = fixes.get(error.errno or 0, "check the path and run the same command again")
    return f"cannot access{where}: {error.strerror or error}; {fix}"


def _usage(name: str, config_class: type) -> str:
    """The usage line with the options a run needs written as required (argparse would bracket them: they may
    come from --config instead)."""
    import dataclasses

    needed, positional = [], []
    for item in dataclasses.fields(config_class):
        if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:  # type: ignore[misc]
            if item.metadata.get("positional"):
                positional.append(item.name.upper() + (" ..." if "list" in str(item.type) else ""))
            else:
                needed.append(f"--{item.name.replace('_', '-')} {item.name.upper()}")
    return " ".join([f"tokendistill {name}", *needed, "[options]", *positional])


def _registry_names() -> dict[str, list[str]]:
    """The names each registry holds, for the options' help (the attribution methods import torch)."""
    from tokendistill.attribution.methods import METHODS
    from tokendistill.tasks import TASKS
    from tokendistill.training.modes import MODES

    return {"tasks": TASKS.names(), "methods": METHODS.names(), "modes": MODES.names()}


def build_parser(with_names: bool = True, command: str | None = None) -> argparse.ArgumentParser:
    """The CLI; ``with_names``: list the registries' names in the options' help, which only a command's --help
    shows (parsing never needs them: a name is checked by its registry when the run starts). ``command``: build
    only that command's options (None: every command's), so that a run imports only what it uses."""
    parser = _Parser(
        prog="tokendistill",
        description="Distil a small student from the input words a teacher relies on.",
    )
    from tokendistill import __version__

    parser.add_argument("--version", action="version", version=f"tokendistill {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    registries = _registry_names() if with_names else None
    for name, help_text, where, handler in _commands():
        if command is not None and name != command:
            commands.add_parser(name, help=help_text, description=help_text)  # listed; its options unbuilt
            continue
        config_class = _config_class(where)
        sub = commands.add_parser(name, help=help_text, description=help_text,
                                  usage=_usage(name, getattr(config_class, "base", config_class)))
        sub.prog = f"tokendistill {name}"
        add_arguments(sub, config_class, registries)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        sub.set_defaults(handler=handler, config_class=config_class)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    # Only a command's --help shows the registries' names; --version, the top-level --help and every run parse
    # without importing torch for them.
    command = next((word for word in given if not word.startswith("-")), None)
    parser = build_parser(with_names=len(given) > 1 and bool({"-h", "--help"} & set(given)),
                          command=command if command in {name for name, *_ in _commands()} else "")
    from tokendistill.card import record_command

    record_command(list(sys.argv[1:] if argv is None else argv))
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit:  # --help, or a usage mistake already reported in one line
        return int(exit.code or 0)
    debug = getattr(arguments, "debug", False)
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(levelname)s %(message)s")
    for noisy in ("httpx", "urllib3", "filelock", "datasets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Offline, the hub client logs every retry; our own error says what failed and what to do.
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    if not debug:
        import transformers

        # Our own progress bars cover the long steps; the library's per-load bars only add noise.
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    handler, config_class = arguments.handler, arguments.config_class
    del arguments.handler, arguments.config_class
    try:
        handler(from_arguments(config_class, arguments))
    except UserError as error:
        if debug:
            raise
        print(f"tokendistill: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if debug:
            raise
        print(f"tokendistill: error: {environment_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tokendistill: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        _leave_process_group()
    return 0


def _leave_process_group() -> None:
    """Leave a distributed run's process group before the interpreter ends: gloo's worker threads, still alive at
    finalization, can abort a finished process ("terminate called without an active exception", SIGABRT;
    pytorch#179291), which turned a resumed FSDP run's exit code into a failure after its work was written."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
