#!/usr/bin/env bash
# Set up snn-det from nothing on a Python 3.11 machine (CPU is enough).
#
#   bash tools/setup_env.sh            # creates ./.venv
#   VENV=/path/to/venv bash tools/setup_env.sh
#
# Installs requirements/runtime.txt and requirements/tests.txt at the versions of
# requirements/constraints.txt (torch 2.14.1, mmengine 0.10.7, mmcv 2.1.0 built from
# source with its CPU ops (NMS, RoIAlign, ...), mmdet 3.3.0, mmpretrain 1.2.0, ...),
# then this package in editable mode, which compiles the fused neuron kernels
# (snn_det/neurons/csrc) against the installed torch.
#
# mmcv 2.1.0 has no wheel for this torch, so it is compiled once (~20 min on
# 2 cores) and the wheel is cached in $SNN_DET_CACHE (default
# ~/.cache/snn-det/wheels); later set-ups reuse it and take minutes.
# Two traps of that build are handled here:
#   * torch 2.14 headers need C++20 while mmcv's setup.py passes -std=c++17:
#     the flag is rewritten in the unpacked sources before building;
#   * mmcv's setup.py (and mmengine's `mmdet::` config lookup) import
#     pkg_resources: setuptools is pinned to >=77,<81, which still ships it,
#     and mmcv builds with --no-build-isolation.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
CACHE="${SNN_DET_CACHE:-$HOME/.cache/snn-det}"
WHEELS="$CACHE/wheels"
MMCV_VERSION=$(sed -n "s/^mmcv==//p" "$ROOT/requirements/constraints.txt")
mkdir -p "$WHEELS"

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
# pip prints a warning per package for index folders it does not find; hide those.
pip_install() { "${PIP[@]}" install -q "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
REQ="$ROOT/requirements"
CONSTRAINTS=(-c "$REQ/constraints.txt")
log "installing torch + torchvision ($(grep -E '^torch(vision)?==' "$REQ/constraints.txt" | tr '\n' ' '))"
pip_install "${CONSTRAINTS[@]}" torch torchvision
# mmcv's build imports torch, numpy and pkg_resources (setuptools < 81); mmengine is its dependency
pip_install "${CONSTRAINTS[@]}" setuptools "numpy>=1.24" wheel ninja mmengine

have_mmcv() { "$VENV/bin/python" - <<'PY' 2>/dev/null
import mmcv, mmcv.ops  # noqa: F401
from mmcv.ops import nms
assert mmcv.__version__ == "2.1.0"
PY
}

if ! have_mmcv; then
  wheel=$(ls "$WHEELS"/mmcv-${MMCV_VERSION}-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then
    log "building mmcv ${MMCV_VERSION} with CPU ops from source (~20 min on 2 cores; cached afterwards)"
    build="$(mktemp -d)"
    trap 'rm -rf "$build"' EXIT
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
      "mmcv==${MMCV_VERSION}" -d "$build"
    tar -xzf "$build"/mmcv-${MMCV_VERSION}.tar.gz -C "$build"
    src="$build/mmcv-${MMCV_VERSION}"
    # torch >= 2.10 headers require C++20; mmcv pins c++14/17 in extra_compile_args.
    sed -i -E "s/-std=c\+\+1[47]/-std=c++20/g" "$src/setup.py"
    grep -q -- "-std=c++20" "$src/setup.py" || { echo "mmcv setup.py: could not set -std=c++20" >&2; exit 1; }
    MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "${PIP[@]}" wheel --no-deps --no-build-isolation -w "$build/dist" "$src"
    cp "$build"/dist/mmcv-${MMCV_VERSION}-*.whl "$WHEELS"/
    wheel=$(ls "$WHEELS"/mmcv-${MMCV_VERSION}-*.whl | head -n 1)
  else
    log "reusing cached mmcv wheel $wheel"
  fi
  pip_install --no-deps "$wheel"
  pip_install addict packaging Pillow pyyaml yapf
fi

log "installing requirements/runtime.txt and tests.txt, and snn-det (editable)"
pip_install "${CONSTRAINTS[@]}" -r "$REQ/runtime.txt" -r "$REQ/tests.txt"
pip_install --no-build-isolation --no-deps -e "$ROOT"
# benchmark dependencies (SpikingJelly, sinabs: the peers of tests/test_peers.py), some
# without the dependencies they list but do not import (see requirements/benchmarks.txt):
# what they import first, then the two with --no-deps (last, so that pip's resolver does
# not report the dependencies they list but this project leaves out on purpose)
log "installing requirements/benchmarks*.txt"
pip_install "${CONSTRAINTS[@]}" -r "$REQ/benchmarks.txt"
pip_install --no-deps -r "$REQ/benchmarks-no-deps.txt"
# the fused IF / signed neuron steps (snn_det/neurons/_C) against this torch; an editable
# install through setuptools >= 80 does not build extensions in place, so build them here
log "compiling the fused neuron kernels (snn_det/neurons/csrc)"
(cd "$ROOT" && "$VENV/bin/python" setup.py -q build_ext --inplace 2>&1 \
  | grep -v "No CUDA runtime is found" || true)
"$VENV/bin/python" -c "import torch, mmcv, mmdet, mmengine, mmcv.ops, mmpretrain, snn_det; from snn_det.neurons import fused_available; print('torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmdet', mmdet.__version__, '| mmengine', mmengine.__version__, '| snn_det', snn_det.__version__, '| fused neurons', fused_available())"
log "done. Activate with: source $VENV/bin/activate"
