#!/usr/bin/env bash
# The e-SNLI verdict grid (configs/decisive/esnli-cpu-verdict.yaml, issue 29), its new cells seed by seed, so that
# each seed's comparison is complete before the next seed starts: seeds 0-2 of kd and of the random_matched cells
# first (seeds 0-2 of standard and of the shared-prompt multitask, multitask_kd and dss cells are published in
# docs/results/decisive-esnli-cpu), then seeds 3 and 4 of every cell. Every invocation resumes or skips what is
# done; a file PAUSE in the grid folder holds the queue between invocations (for CI or tests on a 2-core machine).
#   nice experiments/verdict_esnli.sh                       (about 8 min a cell on 2 idle cores; 23 new cells)
#   python tools/publish_grid.py runs/decisive-esnli-cpu docs/results/decisive-esnli-cpu
#   tokendistill results docs/results/decisive-esnli-cpu
set -euo pipefail
GRID=${GRID:-runs/decisive-esnli-cpu}
TD=${TOKENDISTILL:-tokendistill}
YAML=configs/decisive/esnli-cpu-verdict.yaml
for only in "seed=0 mode=standard,kd" "seed=0 method=random_matched" "seed=1 mode=kd" "seed=1 method=random_matched" \
            "seed=2 mode=kd" "seed=2 method=random_matched" "seed=3" "seed=4"; do
    while [ -e "$GRID/PAUSE" ]; do sleep 20; done
    echo "=== $(date -u +%H:%M:%S) --only $only"
    $TD run "$YAML" --output "$GRID" --only "$only"
done
