#!/usr/bin/env bash
# Controls for the e-SNLI student grid (configs/offline/esnli.yaml): where does the multitask gain come from?
#   standard-900:     the standard cell with 3x the steps (a multitask step carries two rows per example, so a
#                     multitask cell has about twice the compute of a standard one: this gives standard more)
#   multitask-random: the multitask cell with 5 random input words per example (attribution method `random`,
#                     same filters) in place of the teacher's top-5 saliency words
# Same student, data, seed, learning rate and evaluation as the grid's cells; only the named setting differs.
# Run after the grid's cells of the same seeds; every step resumes or skips what is done.
#   experiments/esnli_controls.sh [SEEDS...]      (default: 0)
set -euo pipefail
GRID=${GRID:-runs/offline-esnli}
OUT=${OUT:-runs/offline-esnli-controls}
TD=${TOKENDISTILL:-tokendistill}
CELLS=$GRID/esnli/n1000
$TD extract --config "$GRID/esnli/rationales-teacher/config.yaml" --method random --output "$OUT/rationales-random"
for seed in "${@:-0}"; do
    $TD train --config "$CELLS/standard/seed$seed/student/config.yaml" --steps 900 \
        --output "$OUT/standard-900/seed$seed/student"
    $TD evaluate --config "$CELLS/standard/seed$seed/eval/config.yaml" \
        --model "$OUT/standard-900/seed$seed/student" --output "$OUT/standard-900/seed$seed/eval"
    $TD train --config "$CELLS/multitask-k5-teacher/seed$seed/student/config.yaml" \
        --rationales "$OUT/rationales-random" --output "$OUT/multitask-random/seed$seed/student"
    $TD evaluate --config "$CELLS/multitask-k5-teacher/seed$seed/eval/config.yaml" \
        --model "$OUT/multitask-random/seed$seed/student" --output "$OUT/multitask-random/seed$seed/eval"
done
for metrics in "$CELLS"/*/seed*/eval/metrics.json "$OUT"/*/seed*/eval/metrics.json; do
    python -c "import json, sys; m = json.load(open(sys.argv[1])); print(f'{m[\"accuracy\"]:.3f}', sys.argv[1])" "$metrics"
done
