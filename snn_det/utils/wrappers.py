"""The model inside a distributed wrapper."""
from mmengine.model import is_model_wrapper


def unwrap(model):
    """``model.module`` for a DDP / mmengine wrapper, else ``model``."""
    return model.module if is_model_wrapper(model) else model
