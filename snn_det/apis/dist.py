"""``--launcher pytorch`` on machines without a GPU.

mmengine's ``init_dist('pytorch')`` calls ``torch.cuda.set_device(LOCAL_RANK)``, so
``torchrun ... tools/test.py ... --launcher pytorch`` fails on a CPU machine
before anything runs, and its runner wraps the model in DDP with
``device_ids=[LOCAL_RANK]``, which DDP rejects for a CPU module.  Where CUDA is
present nothing here changes mmengine's own path (NCCL by default).  Without it,
:func:`prepare_launcher` initialises the default process group with the gloo
backend from torchrun's environment (``MASTER_ADDR``, ``RANK``, ...) -- mmengine's
runner then sees an initialised group and skips its own ``init_dist`` -- and sets
a model wrapper without device ids.  Everything else (samplers, evaluators'
result collection, ``mmengine.dist`` reductions) is mmengine's own.
"""
import datetime
import os

import torch
import torch.distributed as torch_dist


def prepare_launcher(cfg, launcher: str) -> None:
    """Set ``cfg.launcher`` and, on a machine without CUDA, make it work with gloo."""
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ValueError(f"--launcher {launcher} needs CUDA; on the CPU run the tool under "
                         'torchrun with --launcher pytorch (gloo backend)')
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise ValueError(f'--launcher pytorch: {", ".join(missing)} not set; start the tool '
                         'with torchrun --nproc_per_node N')
    env = cfg.get('env_cfg') or {}
    dist_cfg = dict(env.get('dist_cfg') or {})
    backend = dist_cfg.get('backend', 'gloo')
    if backend != 'gloo':          # nccl (mmdet's default) needs GPUs
        backend = 'gloo'
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = backend
    if not torch_dist.is_initialized():
        timeout = datetime.timedelta(seconds=int(dist_cfg.get('timeout', 1800)))
        torch_dist.init_process_group(backend=backend, timeout=timeout)
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False)


def finish_launcher() -> None:
    """End a distributed run cleanly: wait until every rank is done (rank 0 writes the
    results after the others have nothing left to do), then destroy the default process
    group.

    A process group left to the interpreter's exit is torn down while the peers' gloo
    connections close under it: one such run (the CI of this project, two ranks of
    ``tools/test.py``) ended with rank 0 killed by SIGABRT after it had printed its
    metrics.  PyTorch asks for ``destroy_process_group`` before exit for this reason.
    Does nothing outside a distributed run."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    torch_dist.barrier()
    torch_dist.destroy_process_group()
