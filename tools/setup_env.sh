#!/usr/bin/env bash
# Creates (or completes) .venv at the repository root with the pinned OpenMMLab stack.
# Does nothing when .venv already matches the requirement files.
#
# mmcv 2.1.0 is published on PyPI as source only. It is built once per machine with its
# compiled ops and the wheel is cached in $MOKD_WHEEL_CACHE
# (default ~/.cache/mokd_mm/wheels), so later fresh clones install it in seconds.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
cache="${MOKD_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mokd_mm/wheels}"
stamp="$venv/.mokd_env_stamp"
base_python="${MOKD_BASE_PYTHON:-python3.11}"
command -v "$base_python" >/dev/null || base_python=python3

want="$(cat "$root"/requirements.txt "$root"/requirements/*.txt "$root"/tools/setup_env.sh | sha256sum)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

log() { echo "[setup_env] $*" >&2; }
py="$venv/bin/python"
pip_install() { "$py" -m pip install --disable-pip-version-check -q "$@"; }

[ -x "$py" ] || { log "creating $venv"; "$base_python" -m venv "$venv"; }
log "installing torch 2.14.1 and build tools"
pip_install --upgrade pip 'setuptools>=77,<82' wheel ninja
pip_install torch==2.14.1 torchvision==0.29.1

mkdir -p "$cache"
if ! ls "$cache"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
  log "building mmcv 2.1.0 with its ops (once per machine; minutes)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  "$py" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
      --no-build-isolation mmcv==2.1.0 -d "$work"
  tar -xzf "$work"/mmcv-2.1.0.tar.gz -C "$work"
  # torch >= 2.14 headers need C++20; mmcv 2.1.0's setup.py asks for C++17.
  sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-2.1.0/setup.py"
  MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" "$py" -m pip wheel --disable-pip-version-check -q \
      --no-deps --no-build-isolation "$work/mmcv-2.1.0" -w "$work/dist"
  wheel="$(ls "$work"/dist/mmcv-2.1.0-*.whl)"
  cp "$wheel" "$cache/.partial.whl"
  mv "$cache/.partial.whl" "$cache/$(basename "$wheel")"  # never a half-written wheel
fi
pip_install --no-deps "$cache"/mmcv-2.1.0-*.whl

log "installing the OpenMMLab stack and mokd_mm"
pip_install -r "$root/requirements.txt"
pip_install --no-deps --no-build-isolation -e "$root"
"$py" -c "import mmcv.ops, mmdet, mmpretrain, mokd_mm"
echo "$want" > "$stamp"
log "ready: $venv"
