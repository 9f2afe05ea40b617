#!/usr/bin/env bash
# Pre-train RelCon on your own wrist recordings: shards, stage 1 (distance), stage 2 (encoder).
# Usage: examples/pretrain_own_data.sh OUTPUT_DIR RATE_HZ FILE...
set -euo pipefail
output_dir=$1
rate=$2
shift 2

relcon-hf prepare --input "$@" --sampling-rate "$rate" --output-dir "$output_dir/shards"
relcon-hf pretrain-distance --shards "$output_dir/shards" --output-dir "$output_dir/distance" --preset paper
relcon-hf pretrain --shards "$output_dir/shards" --distance-model "$output_dir/distance" \
    --output-dir "$output_dir" --preset paper --no-probe
