"""Progress bars for long command-line work: tqdm when installed, a plain counter otherwise.

Bars are shown only when the stream is a terminal (so logs and pipes stay clean) unless the
caller forces them on or off; ``PPWDS_PROGRESS=0`` / ``=1`` overrides the terminal test.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, Any

from ._settings import env_flag


def _wanted(enabled: bool | None, stream: IO[str]) -> bool:
    if enabled is not None:
        return enabled
    forced = env_flag("PPWDS_PROGRESS", default=None)
    if forced is not None:
        return bool(forced)
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _fmt(n: float, unit: str) -> str:
    if unit != "B":
        return f"{n:,.0f}"
    for suffix in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or suffix == "TB":
            return f"{n:.0f} {suffix}" if suffix == "B" else f"{n:.1f} {suffix}"
        n /= 1000
    return f"{n:.1f} TB"


class Progress:
    """``with Progress(total, "lint", unit="B") as bar: bar.update(n)``.

    ``enabled=None`` shows the bar only on a terminal. ``use_tqdm=False`` forces the plain
    counter (one ``\\r``-rewritten line, refreshed at most five times a second).
    """

    def __init__(
        self,
        total: float | None,
        desc: str,
        *,
        unit: str = "",
        enabled: bool | None = None,
        stream: IO[str] | None = None,
        use_tqdm: bool = True,
    ) -> None:
        self.stream: IO[str] = stream if stream is not None else sys.stderr
        self.enabled = _wanted(enabled, self.stream)
        self.total = total
        self.desc = desc
        self.unit = unit
        self.done = 0.0
        self._bar: Any = None
        self._last = 0.0
        self._shown = False
        if self.enabled and use_tqdm:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                scale = unit == "B"
                self._bar = tqdm(
                    total=total, desc=desc, unit=unit or "it", unit_scale=scale, file=self.stream, leave=False
                )

    def update(self, n: float = 1) -> None:
        """Advance by ``n`` units."""
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last < 0.2 and (self.total is None or self.done < self.total):
            return
        self._last = now
        total = f"/{_fmt(self.total, self.unit)}" if self.total else ""
        self.stream.write(f"\r{self.desc}: {_fmt(self.done, self.unit)}{total}")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        """Remove the bar (the final summary is printed by the caller)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
