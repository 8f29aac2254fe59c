"""Small helpers shared by the pipeline stages: brace expansion, seeds, worker info."""

from __future__ import annotations

import fnmatch
import functools
import glob
import hashlib
import itertools
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

# Brace expansion is the ``braceexpand`` package's (the one both references use), so that
# ``shard-{0..10}.tar`` names exactly the files bash and webdataset name.
from braceexpand import UnbalancedBracesError, braceexpand  # type: ignore[attr-defined]  # noqa: F401 - not in its stub

from . import _settings

#: webdataset 1.0.2's security switch (initially from ``WDS_SECURE``). True refuses ``pipe:``,
#: local files, ``GOPEN_REWRITE``, unpickling and paddle.load; False allows them all; None (the
#: default when WDS_SECURE is unset) keeps ppwebdataset's defaults (see ``ppwebdataset._settings``).
enforce_security = _settings.initial_security()


def glob_with_braces(pattern):
    """``glob.glob`` over every brace expansion of ``pattern``."""
    return [f for pat in braceexpand(pattern) for f in glob.glob(pat)]


def fnmatch_with_braces(filename, pattern):
    """True when ``filename`` matches any brace expansion of ``pattern``."""
    return any(fnmatch.fnmatch(filename, pat) for pat in braceexpand(pattern))


# ---------------------------------------------------------------------------
# Seeds
# ---------------------------------------------------------------------------


def _stable_hash(arg) -> int:
    if isinstance(arg, bool | int | np.integer):
        return int(arg)
    if isinstance(arg, str):
        arg = arg.encode("utf-8", "surrogatepass")
    if isinstance(arg, bytes | bytearray):
        return int.from_bytes(hashlib.blake2b(bytes(arg), digest_size=8).digest(), "little")
    if isinstance(arg, float):
        return _stable_hash(repr(arg))
    if isinstance(arg, tuple):
        return make_seed(*arg)
    if arg is None:
        return 0
    return _stable_hash(repr(arg))


def make_seed(*args):
    """A 31-bit seed from the arguments; unlike upstream it does not depend on PYTHONHASHSEED."""
    seed = 0
    for arg in args:
        seed = (seed * 31 + _stable_hash(arg)) & 0x7FFFFFFF
    return seed


def is_iterable(obj):
    """True for iterables other than str and bytes."""
    if isinstance(obj, str | bytes):
        return False
    return isinstance(obj, Iterable | Iterator)


class PipelineStage:
    """Base class of stages that transform an iterator (``run(src)``)."""

    def invoke(self, *args, **kw):
        raise NotImplementedError

    def run(self, *args, **kw):
        return self.invoke(*args, **kw)


def identity(x: Any) -> Any:
    """Return the argument."""
    return x


def safe_eval(s: str, expr: str = "{}"):
    """Evaluate a literal (no code): numbers, strings, tuples, lists, dicts."""
    import ast

    if re.search(r"[^-+*/0-9a-zA-Z_.,()\[\]{}:'\" ]", s):
        raise ValueError(f"safe_eval: illegal characters in {s!r}")
    return ast.literal_eval(expr.format(s))


def lookup_sym(sym: str, modules: list):
    """Return the first attribute ``sym`` found in the named modules, else None."""
    import importlib

    for mod in modules:
        m = sys.modules.get(mod) or importlib.import_module(mod)
        if hasattr(m, sym):
            return getattr(m, sym)
    return None


def repeatedly0(loader: Iterator, nepochs: int = sys.maxsize, nbatches: int = sys.maxsize):
    """Yield up to ``nbatches`` items of ``loader``, ``nepochs`` times."""
    for _ in range(nepochs):
        yield from itertools.islice(loader, nbatches)


def guess_batchsize(batch: tuple | list):
    """The length of a batch's first field."""
    return len(batch[0])


def repeatedly(
    source: Iterator,
    nepochs: int | None = None,
    nbatches: int | None = None,
    nsamples: int | None = None,
    batchsize: Callable[..., int] = guess_batchsize,
):
    """Iterate ``source`` again and again until an epoch, batch or sample count is reached."""
    epoch = batches = total = 0
    while True:
        count = 0
        for sample in source:
            yield sample
            count += 1
            batches += 1
            if nbatches is not None and batches >= nbatches:
                return
            if nsamples is not None:
                total += batchsize(sample)
                if total >= nsamples:
                    return
        epoch += 1
        if count == 0 or (nepochs is not None and epoch >= nepochs):
            return


# ---------------------------------------------------------------------------
# Rank and worker information (Paddle first)
# ---------------------------------------------------------------------------


def _env_pair(a: str, b: str):
    first, second = _settings.env_str(a), _settings.env_str(b)
    if first is None or second is None:
        return None
    try:
        return int(first), int(second)
    except ValueError:
        return None


def paddle_rank_info(group=None) -> tuple[int, int]:
    """``(rank, world_size)``: env RANK/WORLD_SIZE, else an initialised ``paddle.distributed``,
    else PADDLE_TRAINER_ID/PADDLE_TRAINERS_NUM (set by ``paddle.distributed.launch``)."""
    pair = _env_pair("RANK", "WORLD_SIZE")
    if pair is not None:
        return pair
    dist = sys.modules.get("paddle.distributed")
    if dist is None and "paddle" in sys.modules:
        try:
            import paddle.distributed as dist
        except ImportError:
            dist = None
    if dist is not None:
        try:
            initialized = dist.is_initialized() if hasattr(dist, "is_initialized") else False
            if initialized:
                if group is None:
                    return dist.get_rank(), dist.get_world_size()
                return dist.get_rank(group=group), dist.get_world_size(group=group)
        except Exception:  # an unusual Paddle build: fall back to the launcher's env
            pass
    pair = _env_pair("PADDLE_TRAINER_ID", "PADDLE_TRAINERS_NUM")
    if pair is not None:
        return pair
    return 0, 1


def paddle_worker_only_info() -> tuple[int, int]:
    """``(worker, num_workers)``: env WORKER/NUM_WORKERS, else ``paddle.io.get_worker_info()``."""
    pair = _env_pair("WORKER", "NUM_WORKERS")
    if pair is not None:
        return pair
    io = sys.modules.get("paddle.io")
    if io is not None and hasattr(io, "get_worker_info"):
        info = io.get_worker_info()
        if info is not None:
            return int(info.id), int(info.num_workers)
    return 0, 1


def paddle_worker_info(group=None):
    """``(rank, world_size, worker, num_workers)`` for this process."""
    rank, world_size = paddle_rank_info(group)
    worker, num_workers = paddle_worker_only_info()
    return rank, world_size, worker, num_workers


def paddle_worker_seed(group=None):
    """A distinct, deterministic seed per worker and rank."""
    rank, _, worker, _ = paddle_worker_info(group=group)
    return rank * 1000 + worker


# Upstream names, so code written for webdataset keeps working.
pytorch_worker_info = paddle_worker_info
pytorch_worker_seed = paddle_worker_seed


# ---------------------------------------------------------------------------
# Decorators
# ---------------------------------------------------------------------------


def deprecated(func=None):
    """Mark a function deprecated (warns on call): ``@deprecated`` or ``@deprecated("reason")``."""
    reason = None if callable(func) else func

    def decorator(f):
        @functools.wraps(f)
        def new_func(*args, **kwargs):
            msg = f"Call to deprecated function {f.__name__}."
            if reason is not None:
                msg += " Reason: " + reason
            warnings.warn(msg, category=DeprecationWarning, stacklevel=2)
            return f(*args, **kwargs)

        return new_func

    return decorator(func) if callable(func) else decorator


class ObsoleteException(Exception):
    """Raised by functions marked obsolete unless ALLOW_OBSOLETE=1."""


def obsolete(func=None, *, reason=None):
    """Mark a function obsolete: it raises unless ALLOW_OBSOLETE=1."""
    if func is None:
        return functools.partial(obsolete, reason=reason)

    @functools.wraps(func)
    def new_func(*args, **kwargs):
        if not _settings.env_flag("ALLOW_OBSOLETE"):
            msg = f"Call to obsolete function {func.__name__}. Set env ALLOW_OBSOLETE=1 to permit."
            if reason is not None:
                msg += " Reason: " + reason
            raise ObsoleteException(msg)
        return func(*args, **kwargs)

    return new_func


def compute_sample_weights(n_w_pairs):
    """Relative weights from ``(count, weight)`` pairs, scaled so the largest is 1."""
    ns = np.array([p[0] for p in n_w_pairs], dtype=float)
    ws = np.array([p[1] for p in n_w_pairs], dtype=float)
    weighted = ns * ws
    return weighted / np.amax(weighted)
