#!/usr/bin/env bash
# `llm-bench merge` of many shards of one stress run (issue 13 §2): 64 shards (`--shard I/64`,
# one --run-id, one --start-at) of a 60 s stress run with 1 s report intervals against the
# simulator, all pinned to CPU 1; then merges of the first 8, 16, 32 and all 64 folders. Prints
# each merge's records, MiB of requests.jsonl, intervals, wall time, records/s, CPU and peak RSS
# (and RSS over the bytes it read), and whether the merge of all has every shard's records.
#   scripts/bench-merge.sh                       # 64 shards, 60 s
#   BENCH_SECONDS=300 scripts/bench-merge.sh 32  # 32 shards of a 5-minute run
#   BENCH_KEEP=/tmp/merge scripts/bench-merge.sh # keep the folders
# Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench merge_stream -- "$@"
