"""The name of every file a stage writes, and of every kind of folder, defined once: each stage writes its own
files and reads another's through these names, so that a rename cannot leave a reader behind."""

from dataclasses import dataclass


@dataclass(frozen=True)
class FolderKind:
    """A kind of folder a stage writes, as `folders.open_output` names it in a refusal."""

    name: str  # "rationale folder": "X exists and is not a rationale folder"
    holds: str  # "rationales": "X holds rationales of a different configuration"


RATIONALE_FOLDER = FolderKind("rationale folder", "rationales")  # extract
STUDENT_FOLDER = FolderKind("student folder", "a student")  # train
EVALUATION_FOLDER = FolderKind("evaluation folder", "an evaluation")  # evaluate
TEACHER_CHECK_OUTPUT = FolderKind("teacher check folder", "a teacher check")  # teacher-eval

# A student folder (train): the weights as `save_pretrained` writes them, and beside them
STUDENT_INFO = "tokendistill.json"  # the run's identity, config and input fingerprints: a finished student
CHECKPOINT = "checkpoint.pt"  # mid-run state, tensors and plain values only (loads with weights_only=True)
CHECKPOINT_INFO = "checkpoint.json"  # the checkpoint's identity, compared before the checkpoint is read
TRAIN_LOG = "train_log.jsonl"  # one line per step: losses
TRAIN_IDS = "train_ids.txt"  # the ids of the rows a (teacher) model was trained on
TRAIN_INPUTS = "train_input_digests.txt"  # their inputs' digests: evaluation refuses to call them test rows
TRAIN_INPUTS_BEFORE = "train_inputs.txt"  # the same file as versions before 0.2 named it (read, never written)
MODEL_CARD = "README.md"  # the Hugging Face model card
CARD_METRICS = ".card_metrics.json"  # the evaluations the card lists (written by evaluate)
BEST_WEIGHTS = "best_weights.pt"  # --keep-best: the best step's weights so far (tensors only), until the save

# A rationale folder (extract)
MANIFEST = "manifest.json"  # identity, versions, completeness and summary
RECORDS = "records.jsonl"  # one record per example

# An evaluation folder (evaluate) and a teacher check (teacher-eval)
PREDICTIONS = "predictions.jsonl"
PARTIAL_PREDICTIONS = "predictions.partial.jsonl"  # an unfinished evaluation's rows: its identity, then a row a line
METRICS = "metrics.json"
TEACHER_CHECK = "teacher_eval.json"
TEACHER_CHECK_PREDICTIONS = "teacher_predictions.jsonl"  # per row: each reading's answer and whether it is right
# A grid's teacher checks, per task, each folder named after the command that writes it: of the teacher it trains
# students with, and of that teacher's base model before fine-tuning
TEACHER_CHECK_FOLDER = "teacher-eval"
TEACHER_CHECK_BEFORE_FOLDER = f"{TEACHER_CHECK_FOLDER}-before"
# A grid's competence checks read validation rows, never test rows: the teacher's, and a standard student's.
TEACHER_CHECK_VALID_FOLDER = f"{TEACHER_CHECK_FOLDER}-valid"
COMPETENCE_EVAL_FOLDER = "eval-valid"

# A grid folder (run)
CELL_INFO = "cell.json"  # a cell's grid factors, beside its student and evaluation
GRID_PLAN = "experiment.yaml"  # the experiment as resolved
RESULTS_MD, RESULTS_CSV = "results.md", "results.csv"
VERDICT_CSV = "verdict.csv"  # each declared and secondary comparison at the seed level, with what it may claim


def of_experiment(name: str, experiment: str) -> str:
    """A grid file (GRID_PLAN, RUN_CONFIG) of a second experiment YAML that writes into the same grid folder
    (sharing its teacher, rationales and some cells): experiment-NAME.yaml beside the first's experiment.yaml."""
    stem, _, suffix = name.rpartition(".")
    return f"{stem}-{experiment}.{suffix}"


def is_grid_file(name: str, grid_name: str) -> bool:
    """Whether ``name`` is ``grid_name`` or its version for a second experiment (of_experiment)."""
    stem, _, suffix = grid_name.rpartition(".")
    return name == grid_name or (name.startswith(f"{stem}-") and name.endswith(f".{suffix}"))

# Every stage's folder
CONFIG = "config.yaml"  # the stage's resolved configuration
RUN_CONFIG = "run.yaml"  # the `run` command's own options
LOCK = ".tokendistill.lock"  # held while a run writes the folder

# Reports
ANALYSIS_JSON, ANALYSIS_MD = "analysis.json", "analysis.md"
FAITHFULNESS = "faithfulness.json"
DEMO_SUMMARY = "summary.json"
REPORT = "report.html"


# Every name a stage (or save_pretrained, for the student) writes into its own folder: what --overwrite may remove.
# Anything else in the folder is a user's and stays.
OWN_NAMES = (
    STUDENT_INFO, CHECKPOINT, CHECKPOINT_INFO, TRAIN_LOG, TRAIN_IDS, TRAIN_INPUTS, TRAIN_INPUTS_BEFORE, MODEL_CARD,
    CARD_METRICS,
    BEST_WEIGHTS, MANIFEST, RECORDS, PREDICTIONS, PARTIAL_PREDICTIONS, METRICS, TEACHER_CHECK,
    TEACHER_CHECK_PREDICTIONS, CONFIG, ANALYSIS_JSON, ANALYSIS_MD, FAITHFULNESS, REPORT, "parts",
    # save_pretrained's files (weights, configs, tokenizers, LoRA adapters)
    "*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "config.json", "generation_config.json",
    "tokenizer*", "special_tokens_map.json", "added_tokens.json", "vocab.*", "merges.txt", "spiece.model",
    "sentencepiece.bpe.model", "chat_template.j*", "adapter_*",
    # temporary files and folders of an interrupted write
    ".*.tmp", "*.tmp", ".save-*",
)
