#!/usr/bin/env bash
# A compressed soak (issue 4): a stress run against the simulator at a high request rate,
# printing the client's RSS every minute and at the start and end.
#   scripts/soak.sh                          # 10 minutes, 256 streams
#   SOAK_MINUTES=60 SOAK_CONCURRENCY=1000 scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench soak
