"""Errors raised by the converter, each naming its cause in one line."""
from ..utils.memory import (InsufficientDiskError,  # noqa: F401  (raised by the memory checks)
                            InsufficientMemoryError)


class UnsupportedModuleError(TypeError):
    """A backbone module the converter cannot turn into spiking form."""

    def __init__(self, path: str, module, reason: str = ''):
        kind = type(module).__name__ if not isinstance(module, str) else module
        msg = f"unsupported module '{path}' of type {kind}"
        if reason:
            msg += f': {reason}'
        super().__init__(msg)
        self.path = path


class ConversionStateError(RuntimeError):
    """A converted model used without (or with incomplete) conversion state."""

