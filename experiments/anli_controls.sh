#!/usr/bin/env bash
# Control for the ANLI R1 grid (configs/offline/anli1.yaml): every explanation target (the teacher's words,
# the gold answer's words, DSS's rationales) lifted a below-chance `standard` by about 5 points. Do random
# input words lift it too?
#   multitask-random: the multitask cell (gold target) with 5 random input words per example (attribution
#                     method `random`, same filters) in place of the teacher's top-5 saliency words
# Same student, data, seed, learning rate and evaluation as the grid's cells; only the rationale differs.
# TEACHER: any model with the grid teacher's tokenizer (method `random` uses no weights; the teacher's own
# answer, recorded beside the words, then comes from that model). DEVICE: as the grid's, or another one.
#   experiments/anli_controls.sh [SEEDS...]      (default: 0)
set -euo pipefail
GRID=${GRID:-runs/offline-anli1}
OUT=${OUT:-runs/offline-anli1-controls}
TD=${TOKENDISTILL:-tokendistill}
TEACHER=${TEACHER:-$GRID/anli1/teacher}
DEVICE=${DEVICE:-auto}
CELLS=$GRID/anli1/n1000
$TD extract --config "$GRID/anli1/rationales-gold/config.yaml" --method random --teacher "$TEACHER" \
    --device "$DEVICE" --output "$OUT/rationales-random"
for seed in "${@:-0}"; do
    $TD train --config "$CELLS/multitask-k5-gold/seed$seed/student/config.yaml" --device "$DEVICE" --checkpoint-every 50 \
        --rationales "$OUT/rationales-random" --output "$OUT/multitask-random/seed$seed/student"
    $TD evaluate --config "$CELLS/multitask-k5-gold/seed$seed/eval/config.yaml" --device "$DEVICE" \
        --model "$OUT/multitask-random/seed$seed/student" --output "$OUT/multitask-random/seed$seed/eval"
done
for metrics in "$CELLS"/*/seed*/eval/metrics.json "$OUT"/*/seed*/eval/metrics.json; do
    python -c "import json, sys; m = json.load(open(sys.argv[1])); print(f'{m[\"accuracy\"]:.3f}', sys.argv[1])" "$metrics"
done
