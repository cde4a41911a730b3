#!/usr/bin/env bash
# Set up snn-det from nothing on a Python 3.11 machine (CPU is enough).
#
#   bash tools/setup_env.sh            # creates ./.venv
#   VENV=/path/to/venv bash tools/setup_env.sh
#
# Installs torch 2.14.1 + torchvision 0.29.1, mmengine 0.10.7, mmcv 2.1.0 built
# from source with its CPU ops (NMS, RoIAlign, ...), mmdet 3.3.0, pycocotools,
# matplotlib, pytest, mmpretrain 1.2.0 (classification) and this package in
# editable mode.
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
MMCV_VERSION=2.1.0
mkdir -p "$WHEELS"

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
# pip prints a warning per package for index folders it does not find; hide those.
pip_install() { "${PIP[@]}" install -q "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
log "installing torch 2.14.1 + torchvision 0.29.1"
pip_install torch==2.14.1 torchvision==0.29.1
# mmcv's setup.py and mmengine 0.10.7 (for `mmdet::` base configs) import pkg_resources,
# which setuptools >= 81 no longer ships; torch 2.14 asks for setuptools >= 77.
pip_install "setuptools>=77,<81"
pip_install "numpy>=1.24" mmengine==0.10.7 pycocotools matplotlib pytest \
  "opencv-python-headless>=4.8,<5"

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
    pip_install wheel ninja
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

log "installing mmdet 3.3.0, mmpretrain 1.2.0 and snn-det (editable)"
pip_install mmdet==3.3.0
# mmpretrain's ImageClassifier, datasets and Accuracy serve the classification path
pip_install mmpretrain==1.2.0
pip_install --no-build-isolation --no-deps -e "$ROOT"
"$VENV/bin/python" -c "import torch, mmcv, mmdet, mmengine, mmcv.ops, mmpretrain, snn_det; print('torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmdet', mmdet.__version__, '| mmengine', mmengine.__version__, '| snn_det', snn_det.__version__)"
log "done. Activate with: source $VENV/bin/activate"
