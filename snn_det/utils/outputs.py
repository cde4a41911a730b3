"""Nothing half-written: what a failed or interrupted run created is removed.

``OutputGuard(work_dir)`` wraps a run that writes under ``work_dir``.  If the run
raises (an error, ``KeyboardInterrupt``), the guard removes ``work_dir`` when the run
created it, else only the paths registered with :meth:`remove_on_failure` (e.g. the
runner's timestamped log folder), and the parents those leave empty up to it.
Results themselves are written atomically (a temporary file, then a rename), so an
interruption never leaves a truncated checkpoint or config.
"""
import os
import os.path as osp
import shutil
from typing import List


class OutputGuard:
    """Context manager; see the module docstring."""

    def __init__(self, work_dir: str):
        self.work_dir = osp.abspath(work_dir)
        self.existed = osp.exists(self.work_dir)
        self.paths: List[str] = []

    def remove_on_failure(self, path: str) -> None:
        self.paths.append(osp.abspath(path))

    def __enter__(self) -> 'OutputGuard':
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.cleanup()
        return False

    def cleanup(self) -> None:
        if not self.existed:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            return
        for path in self.paths:
            shutil.rmtree(path, ignore_errors=True) if osp.isdir(path) else \
                (os.remove(path) if osp.exists(path) else None)
            parent = osp.dirname(path)
            while parent.startswith(self.work_dir + osp.sep) and osp.isdir(parent) \
                    and not os.listdir(parent):
                os.rmdir(parent)
                parent = osp.dirname(parent)
