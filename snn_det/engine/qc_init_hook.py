"""Initialise QC / QCFS thresholds from data before Stage-I fine-tuning (seed 003 Sec. V-A).

The trainable thresholds of the QC-ANN start from the source ANN's activation
statistics (a high percentile of each site's activations on a few training
images), so fine-tuning starts near the source network.  Sites already
initialised (e.g. when resuming) are left alone.
"""
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS

from ..pipeline import observe
from ..conversion.thresholds import choose_threshold


@HOOKS.register_module()
class QCThresholdInitHook(Hook):
    """Set each QC site's threshold to the ``percentile`` of its ANN activations."""

    priority = 'VERY_HIGH'

    def __init__(self, num_images: int = 64, percentile: float = 99.9):
        self.num_images = num_images
        self.percentile = percentile

    @torch.no_grad()
    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        backbone = model.backbone
        acts = backbone.site_activations()
        todo = {k: a for k, a in acts.items() if not bool(a.initialized)}
        if not todo:
            return
        was_training = model.training
        model.eval()
        batches, n = [], 0
        for data in runner.train_dataloader:
            inputs = model.data_preprocessor(data, False)['inputs']
            batches.append(inputs)
            n += inputs.shape[0]
            if n >= self.num_images:
                break
        observers = observe(backbone.graph, batches)        # plain ReLU / Leaky-ReLU ANN
        for name, act in todo.items():
            theta = choose_threshold(observers[name], 'percentile', channel_wise=False,
                                     percentile=self.percentile)
            act.threshold.copy_(theta.reshape(()).to(act.threshold))
            act.initialized.fill_(True)
        model.train(was_training)
        print_log(f'QC thresholds initialised on {n} images for {len(todo)} sites '
                  f'({self.percentile}th percentile)', logger='current')
