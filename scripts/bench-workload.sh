#!/usr/bin/env bash
# Workload generation and upload figures (issue 10 §6): prompt and body build cost, synthetic
# images, dataset load throughput, and two end-to-end runs against the built-in simulator
# (ISL 100,000 at 64 connections: upload MB/s and client CPU per request; 5,000 req/s open loop
# at ISL 2,048: send lateness and the pacing warning). Prints the benches' output, then a short
# table. The simulator listens on a free port (--port 0) and is killed when the bench ends,
# however it ends.
#   scripts/bench-workload.sh                  # everything, 10 s end-to-end steps, 200 MB datasets
#   WORKLOAD_SECONDS=5 DATASET_MB=50 scripts/bench-workload.sh
#   scripts/bench-workload.sh micro            # generation costs only (also: e2e, dataset)
# On a 2-CPU machine the simulator (CPU 0) and llm-bench (CPU 1) share it: the end-to-end
# figures are of both together. WORKLOAD_PIN=0 leaves them unpinned.
set -uo pipefail
cd "$(dirname "$0")/.."

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(micro e2e dataset)
has() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

tmp=$(mktemp -d)
child=
# Each command runs in its own process group (job control), so that on exit or a signal the
# whole group goes: cargo, the bench, and the simulator and llm-bench it started (which also
# die with the bench: PR_SET_PDEATHSIG).
set -m
cleanup() {
    [ -n "$child" ] && kill -TERM -- "-$child" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a command as a background job (its own process group) and waits for it.
run() {
    "$@" &
    child=$!
    wait "$child"
    local rc=$?
    child=
    return $rc
}

if ! run cargo bench --bench workload --bench dataset_load --no-run >"$tmp/build.log" 2>&1; then
    echo "bench-workload: build failed: $(grep -m1 -E '^error' "$tmp/build.log" || tail -n1 "$tmp/build.log")"
    exit 1
fi

bench_parts=()
has micro && bench_parts+=(micro)
has e2e && bench_parts+=(e2e)
if [ ${#bench_parts[@]} -gt 0 ]; then
    if ! WORKLOAD_TABLE="$tmp/table.tsv" run cargo bench --bench workload -- "${bench_parts[@]}"; then
        echo "bench-workload: the workload bench failed"
        exit 1
    fi
fi
if has dataset; then
    echo
    if ! run cargo bench --bench dataset_load >"$tmp/dataset.txt" 2>&1; then
        echo "bench-workload: the dataset_load bench failed: $(tail -n1 "$tmp/dataset.txt")"
        exit 1
    fi
    grep -vE '^ +(Finished|Running|Compiling|Blocking) ' "$tmp/dataset.txt"
    # "jsonl  all  200 MB 123 rows (… kept) in 1.00 s:  200 MB/s …" -> a row each.
    grep -E ' MB/s ' "$tmp/dataset.txt" | while read -r line; do
        name=$(awk '{print $1, $2, $3}' <<<"$line")
        mbs=$(grep -oE '[0-9.]+ MB/s' <<<"$line" | head -n1 | awk '{print $1}')
        rows=$(grep -oE '[0-9.]+ rows/s' <<<"$line" | head -n1 | awk '{print $1}')
        printf 'dataset load, %s\t%s MB/s\t(%s rows/s)\n' "$name" "$mbs" "$rows"
    done >>"$tmp/table.tsv"
fi

echo
echo "Summary ($(nproc) CPUs; the end-to-end rows have the simulator and llm-bench on the same machine)"
if [ -s "$tmp/table.tsv" ]; then
    awk -F'\t' '{ printf "  %-50s %18s %s\n", $1, $2, $3 }' "$tmp/table.tsv"
fi
