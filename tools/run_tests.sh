#!/usr/bin/env bash
# Run the test suite in .venv (created on first use by tools/setup_env.sh).
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh tests/test_core -x`;
# MOKD_TEST_WORKERS sets the number of pytest-xdist workers (default: one per core).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/setup_env.sh"
cd "$root"
# One worker per core, one thread each: two torch processes of two threads
# on two cores slow each other down by an order of magnitude.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
exec "$root/.venv/bin/python" -m pytest -n "${MOKD_TEST_WORKERS:-auto}" --dist loadfile "${@:-tests}"
