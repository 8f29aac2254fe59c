"""``paddle.io.Dataset`` / ``paddle.io.Sampler``, or plain stand-ins when Paddle is not installed.

``import ppwids`` must work without Paddle (ppwids 0.2.86 failed there); the
classes then subclass these stand-ins and still work with any loader that only
needs ``__getitem__``/``__len__`` and iteration.
"""

from __future__ import annotations

try:
    from paddle.io import Dataset, Sampler

    HAVE_PADDLE = True
except ImportError:  # Paddle is optional
    HAVE_PADDLE = False

    class Dataset:  # type: ignore[no-redef]
        """Stand-in for ``paddle.io.Dataset`` when Paddle is absent."""

    class Sampler:  # type: ignore[no-redef]
        """Stand-in for ``paddle.io.Sampler`` when Paddle is absent."""

        def __init__(self, data_source=None):
            self.data_source = data_source


__all__ = ["Dataset", "Sampler", "HAVE_PADDLE"]
