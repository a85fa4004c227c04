#!/usr/bin/env bash
# The paper's answer-overlap figure on CommonsenseQA, with a real offline teacher, on a 2-core CPU.
# SmolLM2-135M-Instruct is fine-tuned on 1,200 CQA train questions (150 steps of 8) (it is at chance zero-shot), checked on
# the test split, then attributes 200 test questions (the answer it scores highest among the five choices)
# and `analyze` compares its top-5 words with random words. Every step resumes; run it again to continue.
#   experiments/replication_cqa.sh [OUTPUT]      (needs ~/.cache/offline-models, see configs/offline/esnli.yaml)
set -euo pipefail
OUT=${1:-runs/replication-cqa}
DATA=${TOKENDISTILL_DSS_DATA:-../shared/data/dss}
TEACHER=${TEACHER:-$HOME/.cache/offline-models/smollm2-135m-instruct}
TD=${TOKENDISTILL:-tokendistill}
mkdir -p "$OUT"
$TD teacher-eval --task cqa --data "$DATA" --teacher "$TEACHER" --split test --limit 200 --max-input-length 192 \
    --max-new-tokens 8 --device cpu --output "$OUT/teacher-before"
$TD train --task cqa --data "$DATA" --split train --limit 1200 --student "$TEACHER" --output "$OUT/teacher" \
    --steps 150 --batch-size 8 --learning-rate 1e-4 --max-input-length 192 --max-target-length 8 \
    --checkpoint-every 25 --device cpu
$TD teacher-eval --task cqa --data "$DATA" --teacher "$OUT/teacher" --split test --limit 200 \
    --max-input-length 192 --max-new-tokens 8 --device cpu --output "$OUT/teacher-after"
$TD extract --task cqa --data "$DATA" --teacher "$OUT/teacher" --split test --limit 200 --target choice \
    --top-k 5 --max-input-length 192 --batch-size 8 --device cpu --output "$OUT/rationales"
$TD analyze "$OUT/rationales"
$TD report "$OUT"
