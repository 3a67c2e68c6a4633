#!/usr/bin/env bash
# A sharded run on one machine (issue 13): the simulator pinned to CPU 0, 4 llm-bench shards
# (`--shard I/4`, one --run-id, one --start-at) all pinned to CPU 1, 2,500 streams each, one
# timed step; then `llm-bench merge` of the four folders into one 10,000-stream result. Prints
# streams held (each shard, merged, the simulator's own count), start skew and lateness, requests,
# throughput, client-bound flags, records merged, the merge's wall time and peak RSS, the size of
# the requests.jsonl files, and whether the merged totals are the shards' sums (OK / MISMATCH).
#   scripts/bench-shards.sh                    # 10,000 streams over 4 shards, 15 s
#   BENCH_SECONDS=30 scripts/bench-shards.sh 4000 2
#   BENCH_KEEP=/tmp/shards scripts/bench-shards.sh   # keep the shard and merged folders
# Run it on an otherwise idle machine: anything else on CPU 0 or 1 shows up in the figures (the
# benchmark prints how much else ran, and any listen-queue overflows: with other load on CPU 0 the
# simulator's accept queue, capped by net.core.somaxconn, can overflow and delay the start by the
# SYN retries, 1 s and 3 s).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench shards -- "$@"
