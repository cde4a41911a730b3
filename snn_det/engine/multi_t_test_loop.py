"""``MultiTTestLoop``: one simulation of the backbone, read out at several T.

mmengine's ``TestLoop`` evaluates one model; testing an SNN at T = 8, 16, 32 with
it simulates 8 + 16 + 32 = 56 steps.  When those T share one converted network
(e.g. a net converted for T=32), the first T steps of the 32-step run *are* the
T-step run (the network is causal and its state starts from the same v(0)), so
this loop simulates once to the largest T, keeps each T's time-averaged backbone
outputs (:meth:`SpikingBackbone.share_readouts`), and runs the neck, the head and
one evaluator per T on them: 32 steps instead of 56, with the same numbers.

Hooks see the iteration once (with the largest T's predictions); each T's metrics
come from its own copy of the config's ``test_evaluator``, so distributed runs
collect results across ranks as mmengine's own loop does.
"""
import copy
from typing import Dict, Sequence

import torch
from mmengine.runner.loops import TestLoop


class MultiTTestLoop(TestLoop):
    """Test the SNN at every T of ``T_list`` in one pass over the test set.

    Args:
        runner: the mmengine ``Runner`` (its model's backbone a ``SpikingBackbone``).
        T_list: the numbers of time steps to read out; they must share one converted
            network (``SpikingBackbone.spiking_net(T)`` the same for all).
    """

    def __init__(self, runner, T_list: Sequence[int]):
        super().__init__(runner, runner.test_dataloader, runner.test_evaluator)
        self.T_list = sorted(set(int(t) for t in T_list))
        meta = getattr(self.dataloader.dataset, 'metainfo', None)
        self.evaluators = {}
        for T in self.T_list:
            ev = runner.build_evaluator(copy.deepcopy(runner.cfg.test_evaluator))
            if meta is not None:
                ev.dataset_meta = meta
            self.evaluators[T] = ev

    @property
    def backbone(self):
        from ..utils.wrappers import unwrap
        return unwrap(self.runner.model).backbone

    def run(self) -> Dict[int, dict]:
        """Run the hooks as ``runner.test()`` does (``before_run`` ... ``after_run``) around
        one pass over the test set; returns ``{T: metrics}``."""
        from .evaluators import restrict_evaluator_to_dataset
        for ev in self.evaluators.values():
            restrict_evaluator_to_dataset(ev, self.dataloader.dataset)
        bb = self.backbone
        bb.share_readouts(self.T_list)
        self.runner.call_hook('before_run')         # what runner.test() does around a loop
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        try:
            for idx, data_batch in enumerate(self.dataloader):
                self.run_iter(idx, data_batch)
        finally:
            bb.share_readouts(None)
        results = {T: ev.evaluate(len(self.dataloader.dataset))
                   for T, ev in self.evaluators.items()}
        for T in self.T_list:
            self.runner.call_hook('after_test_epoch', metrics=results[T])
        self.runner.call_hook('after_test')
        self.runner.call_hook('after_run')
        return results

    @torch.no_grad()
    def run_iter(self, idx, data_batch) -> None:
        self.runner.call_hook('before_test_iter', batch_idx=idx, data_batch=data_batch)
        bb = self.backbone
        bb.next_batch()
        outputs = None
        for T in self.T_list:            # the first forward simulates max(T) steps once
            bb.T = T
            outputs = self.runner.model.test_step(data_batch)
            self.evaluators[T].process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook('after_test_iter', batch_idx=idx, data_batch=data_batch,
                              outputs=outputs)
