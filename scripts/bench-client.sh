#!/usr/bin/env bash
# The client under load (issue 3): the simulator and llm-bench as separate processes pinned to
# CPU 0 and CPU 1, at 100 / 1,000 / 10,000 concurrent streams. Prints streams held, events/s,
# client CPU µs per event, RSS per stream, TTFT/ITL error against the simulator's own record,
# and start-up time; then open-loop rows (issue 9): 1,000 and 5,000 requests/s of short requests,
# target vs achieved rate, send lateness p50/p99, client CPU per request and per event.
#   scripts/bench-client.sh                 # 100 1000 10000, 15 s each
#   BENCH_SECONDS=30 scripts/bench-client.sh 1000
#   BENCH_RATES=2000 scripts/bench-client.sh 100   # closed loop at 100 streams, open loop at 2,000/s
#   scripts/bench-client.sh open                    # only the open-loop rows
# Run it on an otherwise idle machine: anything else on CPU 0 or 1 shows up in the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench client_load -- "$@"
