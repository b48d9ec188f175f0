#!/usr/bin/env bash
# Run the test suite in .venv (created on first use by tools/setup_env.sh).
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh tests/test_core -x`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/setup_env.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest "${@:-tests}"
