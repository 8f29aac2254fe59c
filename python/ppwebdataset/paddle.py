"""Paddle base classes, with stand-ins when Paddle is not installed.

Pipelines subclass ``paddle.io.IterableDataset`` so that ``paddle.io.DataLoader``
treats them as iterable datasets; without Paddle the same code still imports.
"""

from __future__ import annotations

try:
    from paddle import Tensor as PaddleTensor
    from paddle.io import DataLoader, IterableDataset

    HAVE_PADDLE = True
except ImportError:  # Paddle is optional
    HAVE_PADDLE = False

    class IterableDataset:  # type: ignore[no-redef]
        """Stand-in for ``paddle.io.IterableDataset`` when Paddle is absent."""

    class DataLoader:  # type: ignore[no-redef]
        """Stand-in for ``paddle.io.DataLoader`` when Paddle is absent."""

        def __init__(self, *args, **kw):
            raise ImportError("paddle.io.DataLoader needs paddlepaddle: pip install paddlepaddle")

    class PaddleTensor:  # type: ignore[no-redef]
        """Stand-in for ``paddle.Tensor`` when Paddle is absent."""


def no_len(self):
    """``__len__`` for iterable stages without a length.

    ``paddle.io.IterableDataset.__len__`` raises RuntimeError, which ``list(ds)`` does not
    catch (it asks ``len()`` for a size hint); TypeError is what torch-based upstream code
    sees and what ``list()`` treats as "no length", so it iterates.
    """
    raise TypeError(f"{type(self).__name__} has no length; use .with_length(n) or with_length(ds, n) to give one")


__all__ = ["IterableDataset", "DataLoader", "PaddleTensor", "HAVE_PADDLE"]
