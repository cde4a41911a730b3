"""Reading and writing checkpoints deliberately.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7
relies on that default, so runner checkpoints that hold numpy scalars/arrays
in their ``meta`` (message hub, hook messages) fail to load.  snn-det replaces
mmengine's local-file loader with one that

1. loads with ``weights_only=True`` (tensors, dicts, lists, numbers, strings);
2. if that is refused, retries still with ``weights_only=True`` but with a
   short allowlist of types needed to *rebuild data*: numpy arrays and scalars
   (``_reconstruct``, ``ndarray``, ``dtype`` and its classes, ``scalar``) and
   mmengine's ``HistoryBuffer`` (the runner's logged scalars, with a
   ``getattr`` that resolves only its statistics methods) -- no callable that
   can run arbitrary code;
3. otherwise fails with a one-line error naming the checkpoint and the
   rejected global.  Only if you trust a file's source, set
   ``SNN_DET_TRUST_CHECKPOINTS=1`` to load it with full pickle.

Checkpoints written by snn-det hold only tensors and plain Python values and
load with ``torch.load(path, weights_only=True)``.
"""
import contextlib
import gzip
import io
import os
import pickle
import tempfile
import zipfile
from typing import Any

import numpy as np
import torch

TRUST_ENV = 'SNN_DET_TRUST_CHECKPOINTS'


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read (missing, corrupt, or not weights-only)."""


def _numpy_safe_globals() -> list:
    """numpy reconstructors allowed in step 2 (names from numpy 1.x and 2.x pickles)."""
    from numpy.core import multiarray as ma1   # alias module on numpy 2
    out = []
    for name in ('numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct'):
        out.append((ma1._reconstruct, name))
    for name in ('numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar'):
        out.append((ma1.scalar, name))
    out += [np.ndarray, np.dtype]
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    try:   # runner checkpoints keep their logs in HistoryBuffer objects (plain data)
        from mmengine.logging.history_buffer import HistoryBuffer
        out.append(HistoryBuffer)
        # ... whose statistics methods are pickled as getattr(HistoryBuffer, 'min'):
        # allow exactly that, not the builtin getattr
        out.append((_history_buffer_getattr, 'builtins.getattr'))
    except ImportError:
        pass
    return out


def _history_buffer_getattr(obj, name):
    """``getattr`` restricted to HistoryBuffer's public statistics methods."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and name in ('min', 'max', 'mean', 'current'):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'getattr({obj!r}, {name!r}) is not allowed')


def _reader(path: str):
    """A callable giving a fresh readable source of the checkpoint on each call: the path,
    or the decompressed bytes of a gzip-compressed checkpoint (``*.pth.gz``, recognised by
    its magic bytes), which is how checkpoints over the repository's size limit are shipped."""
    with open(path, 'rb') as f:
        compressed = f.read(2) == b'\x1f\x8b'
    if not compressed:
        return lambda: path
    try:
        with gzip.open(path, 'rb') as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise CheckpointError(f"cannot read checkpoint '{path}': {_first_line(e)}") from None
    return lambda: io.BytesIO(data)


def load_checkpoint_file(path: str, map_location: Any = 'cpu') -> Any:
    """Load a checkpoint as described in the module docstring (plain or gzip-compressed)."""
    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    src = _reader(path)
    try:
        return torch.load(src(), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as first:
        if 'GLOBAL' not in str(first):          # not a pickled checkpoint at all
            raise CheckpointError(f"cannot read checkpoint '{path}': "
                                  f'{_first_line(first)}') from None
        try:
            with torch.serialization.safe_globals(_numpy_safe_globals()):
                return torch.load(src(), map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as second:
            if os.environ.get(TRUST_ENV) == '1':
                return torch.load(src(), map_location=map_location, weights_only=False)
            reason = _first_line(second)
            for line in str(second).splitlines():     # torch names the rejected global
                if 'GLOBAL' in line:
                    reason = line.strip()
                    break
            raise CheckpointError(
                f"checkpoint '{path}' holds objects outside the weights-only allowlist "
                f'({reason[:200]}); if you trust its source, set {TRUST_ENV}=1') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError,
            gzip.BadGzipFile) as e:
        raise CheckpointError(f"cannot read checkpoint '{path}': {_first_line(e)}") from None


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]


@contextlib.contextmanager
def atomic_output(path: str, suffix: str = ''):
    """Yields a temporary path beside ``path`` to write into; on success it is renamed into
    place (with the mode ``open(path, 'w')`` would give), on failure removed: ``path`` is
    either the whole new file or untouched."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp_', suffix=suffix, dir=d)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint_atomic(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename into place."""
    with atomic_output(path, '.pth') as tmp:
        torch.save(obj, tmp)


def _default_mode() -> int:
    """0o666 minus the umask: what ``open(path, 'w')`` would have given."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_text_atomic(text: str, path: str) -> None:
    """Write a text file through a temporary file and a rename."""
    with atomic_output(path) as tmp, open(tmp, 'w') as f:
        f.write(text)


def to_plain(obj: Any) -> Any:
    """numpy scalars/arrays -> Python numbers/lists, so a checkpoint stays weights-only."""
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, (int, float, str)) else k: to_plain(v)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def install_checkpoint_loader() -> None:
    """Make mmengine load local files through :func:`load_checkpoint_file`."""
    from mmengine.runner.checkpoint import CheckpointLoader

    def _load_from_local(filename, map_location):
        return load_checkpoint_file(filename, map_location)

    CheckpointLoader.register_scheme(prefixes='', force=True)(_load_from_local)
