#!/usr/bin/env bash
# `llm-bench report DIR` on large synthetic requests.jsonl files (issue 11 §1): records/s and
# the child's peak RSS for each size, which should stay flat as the file grows.
#   scripts/bench-report.sh                               # 256,000 and 1,024,000 records
#   REPORT_SIZES=64000,256000,1024000 scripts/bench-report.sh
#   REPORT_CSV=1 scripts/bench-report.sh                  # also write requests.csv in the pass
# The files (about 600 bytes a record) go to a temporary folder removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench report_rebuild
