"""Where a result came from: the commit, the package versions, the date.

Every results file a benchmark writes carries ``provenance()``; paths in results are
relative to the repository (:func:`repo_relative`), never the absolute paths of the
machine that ran it.
"""
import importlib.metadata
import os.path as osp
import platform
import subprocess
import time
from typing import Optional

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
# benchmark-only dependencies (requirements/benchmarks*.txt) whose versions results record
PEERS = ('spikingjelly', 'sinabs', 'nir', 'nirtorch')


def _git(*args: str) -> Optional[str]:
    try:
        out = subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def repo_relative(path: str) -> str:
    """``path`` relative to the repository when it lies inside it, else its file name."""
    if not path:
        return path
    p = osp.abspath(path)
    if p == ROOT or p.startswith(ROOT + osp.sep):
        return osp.relpath(p, ROOT)
    if '/configs/' in p:
        return p[p.rindex('/configs/') + 1:]
    return osp.basename(p) if osp.isabs(path) else path


def code_version(paths=('snn_det', 'setup.py')) -> str:
    """The git tree of the code that computes a result (``snn_det/`` and its build), short,
    with ``+dirty`` when it has uncommitted changes: results of one code version share it
    however many documentation commits lie between their runs; ``'unknown'`` outside git."""
    trees = [_git('rev-parse', f'HEAD:{p}') for p in paths]
    if not all(trees):
        return 'unknown'
    import hashlib
    version = hashlib.sha1(' '.join(trees).encode()).hexdigest()[:10]
    dirty = _git('status', '--porcelain', '--untracked-files=no', '--', *paths)
    return version + ('+dirty' if dirty else '')


def provenance() -> dict:
    """Commit (with ``+dirty`` when the tree has uncommitted changes), versions (the peers'
    included where installed), date, machine and CPU model."""
    import mmengine
    import torch

    from ..version import __version__
    versions = dict(python=platform.python_version(), torch=torch.__version__,
                    mmengine=mmengine.__version__, snn_det=__version__)
    for name in ('mmcv', 'mmdet', 'mmpretrain', 'numpy') + PEERS:   # as installed
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    commit = _git('rev-parse', 'HEAD')
    dirty = _git('status', '--porcelain', '--untracked-files=no')
    if commit and dirty:
        commit += '+dirty'
    return dict(commit=commit or 'unknown', versions=versions,
                date=time.strftime('%Y-%m-%d'), machine=f'{platform.machine()}, '
                f'{__import__("os").cpu_count()} CPU cores'
                + (', CUDA' if torch.cuda.is_available() else ''), cpu=cpu_model())


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows): two
    machines with the same core count can differ twofold in speed."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'
