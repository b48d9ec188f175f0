#!/usr/bin/env bash
# The main job on the built-in demo (creates .venv first if it is missing).
# Arguments go to tools/demo.py, e.g. `bash tools/run_demo.sh --iters 300`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/setup_env.sh"
cd "$root"
exec "$root/.venv/bin/python" tools/demo.py "$@"
