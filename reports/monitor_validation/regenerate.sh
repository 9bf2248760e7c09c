#!/usr/bin/env bash
# Regenerates reports/monitor_validation/ from the shipped frames: the ab initio
# sub-cluster totals (isolated LDA, resumable store DB, default reference-work/frames.db;
# the shipped *_subclusters.json.gz re-assemble them without it), each model's
# expansions, and the report. Run from the repository root:
#   bash reports/monitor_validation/regenerate.sh [DB] [WORKERS]
set -euo pipefail
DB=${1:-reference-work/frames.db}
WORKERS=${2:-1}
F=reports/monitor_validation/frames
BIN=${BIN:-.venv/bin}
mkdir -p "$(dirname "$DB")"
frames() {  # case trajectory r_mbe sample_atoms model
    "$BIN/ase-bodyorder" reference frames "$F/$2" --index 1: --order 3 --r-mbe "$3" \
        --sample-atoms "$4" --seed 0 --db "$DB" --workers "$WORKERS" --model "$5" \
        --totals "$F/$1_subclusters.json.gz" -o "$F/$1-$5.json"
}
for model in mace-hcells-zbl mace-hcells soap-bpnn-hbulk-high; do
    frames nvt nvt_frames.extxyz 2.0 4 "$model"
done
for model in mace-hcells-zbl mace-hcells; do
    frames low-density low-density_frames.extxyz 3.0 8 "$model"
done
"$BIN/ase-bodyorder" reference validation \
    nvt="$F/nvt-mace-hcells-zbl.json" low-density="$F/low-density-mace-hcells-zbl.json" \
    nvt-previous-default="$F/nvt-mace-hcells.json" \
    low-density-previous-default="$F/low-density-mace-hcells.json" \
    nvt-old-default="$F/nvt-soap-bpnn-hbulk-high.json" --out-dir reports/monitor_validation
