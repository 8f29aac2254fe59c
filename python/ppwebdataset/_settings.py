"""The one place where ppwebdataset and ppwids read their switches.

Every environment switch of both packages is read through this module, with
one parser for boolean values (``1 true yes on y t`` / ``0 false no off n f``
and the empty string, any case; other integers count as true when non-zero, as
``bool(int(...))`` did upstream; anything else raises ``ValueError`` naming the
variable). Switches are read when they are needed, so setting them in
``os.environ`` at run time works.

Safety switches:

* ``ppwebdataset.utils.enforce_security`` (initially from ``WDS_SECURE``;
  ``None`` when that is unset) is webdataset 1.0.2's switch. ``True`` blocks
  ``pipe:`` URLs, local and ``file:`` paths, ``GOPEN_REWRITE``, unpickling and
  ``paddle.load``/``torch.load`` with 1.0.2's ``ValueError`` messages.
  ``False`` (set explicitly, or ``WDS_SECURE=0``) allows all of them, unpickling
  included.
* Unpickling and ``paddle.load``/``torch.load`` of sample data are otherwise off
  until ``PPWDS_ALLOW_PICKLE=1`` (or ``ppwebdataset.autodecode.ALLOW_PICKLE`` /
  ``ppwids.wids_decode.ALLOW_PICKLE = True``).
* ``pipe:`` URLs written by the user run as in webdataset. A ``pipe:`` URL that
  comes *from data* -- a shard list, ppwids descriptor or YAML spec read from a
  remote URL, or a rewrite of such a URL -- is a :class:`DataURL` and runs only
  with ``PPWDS_ALLOW_PIPE=1`` (or ``ppwebdataset.gopen.ALLOW_PIPE = True``).
"""

from __future__ import annotations

import os
import sys

from .errors import UnsafeOperationError

TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "off", "n", "f"})


def parse_bool(value, name="value"):
    """``True``/``False`` for a switch's text (see the module docs); ``ValueError`` otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    try:
        return int(text) != 0
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no or on/off)") from None


def env_flag(name, default=False):
    """The boolean value of environment variable ``name`` (``default`` when unset)."""
    if name not in os.environ:
        return default
    return parse_bool(os.environ[name], name)


def env_str(name, default=None):
    """The text of ``name``, or ``default`` when it is unset or empty."""
    value = os.environ.get(name, "")
    return value if value else default


def env_int(name, default=None):
    """``int`` of ``name`` (``default`` when unset or empty); a clear error when it is not a number."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer") from None


def env_float(name, default=None):
    """``float`` of ``name`` (``default`` when unset or empty); a clear error when it is not a number."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None


def initial_security():
    """The start value of ``ppwebdataset.utils.enforce_security``: None unless WDS_SECURE is set."""
    if "WDS_SECURE" not in os.environ:
        return None
    return env_flag("WDS_SECURE")


def _attr(module, name):
    mod = sys.modules.get(module)
    return getattr(mod, name, None) if mod is not None else None


def secure():
    """``ppwebdataset.utils.enforce_security``: True, False (both explicit) or None (our defaults)."""
    value = _attr("ppwebdataset.utils", "enforce_security")
    return None if value is None else bool(value)


def allow_pickle():
    """True when sample data may be unpickled (or loaded with paddle.load / torch.load)."""
    sec = secure()
    if sec is not None:
        return not sec
    if _attr("ppwebdataset.autodecode", "ALLOW_PICKLE") or _attr("ppwids.wids_decode", "ALLOW_PICKLE"):
        return True
    return env_flag("PPWDS_ALLOW_PICKLE")


def allow_pipe():
    """True when ``pipe:`` URLs that came from data may run (user-written ones always may)."""
    gopen = sys.modules.get("ppwebdataset.gopen")
    if gopen is not None and (getattr(gopen, "ALLOW_PIPE", False) or getattr(gopen.gopen, "ALLOW_PIPE", False)):
        return True
    return env_flag("PPWDS_ALLOW_PIPE")


PICKLE_HINT = (
    "if you trust the data set PPWDS_ALLOW_PICKLE=1 (or ppwebdataset.autodecode.ALLOW_PICKLE = True, "
    "or ppwebdataset.utils.enforce_security = False)"
)

# webdataset 1.0.2's messages under enforce_security.
SECURE_MESSAGES = {
    "pipe": "gopen_pipe: unsafe_gopen is False, cannot open pipe URLs",
    "local": "gopen: unsafe_gopen is False, cannot open local files",
    "rewrite": "rewrite_url: unsafe_gopen is False, cannot rewrite URLs using environment variables",
    "unpickling": "Unpickling is not allowed for security reasons when enforce_security is set.",
    "torch.load": "torch.loads is not allowed for security reasons when enforce_security is set.",
    "paddle.load": "paddle.loads is not allowed for security reasons when enforce_security is set.",
}


class SecurityError(UnsafeOperationError, ValueError):
    """Refused because ``enforce_security`` is set (a ValueError, as in webdataset 1.0.2)."""


def check_secure(what):
    """Raise webdataset 1.0.2's ValueError for ``what`` when ``enforce_security`` is True."""
    if secure():
        raise SecurityError(SECURE_MESSAGES[what])


def require_pickle(what):
    """Refuse unpickling-like loads unless allowed; the message says how to allow them."""
    check_secure(what if what in SECURE_MESSAGES else "unpickling")
    if not allow_pickle():
        raise UnsafeOperationError(
            f"{what} can run arbitrary code stored in the data and is disabled by default; {PICKLE_HINT}"
        )


class DataURL(str):
    """A URL that came from data (a list, descriptor or spec read from ``origin``), not from the user.

    It behaves as a plain ``str``; the type only tells the openers that a
    ``pipe:`` URL of this kind needs ``PPWDS_ALLOW_PIPE=1``. String operations
    return plain ``str``, so producers mark their final URLs with
    :func:`from_data` and rewriting keeps the mark with :func:`same_origin`.
    """

    origin: str | None

    def __new__(cls, url, origin=None):
        self = super().__new__(cls, url)
        self.origin = origin
        return self

    def __reduce__(self):
        return (DataURL, (str(self), self.origin))


def from_data(url, origin):
    """Mark ``url`` as coming from data read from ``origin`` (non-strings pass unchanged)."""
    if isinstance(url, str) and not isinstance(url, DataURL):
        return DataURL(url, origin)
    return url


def same_origin(source, derived):
    """``derived`` (e.g. a rewritten URL) keeps the data mark of ``source``."""
    if isinstance(source, DataURL) and isinstance(derived, str):
        return DataURL(derived, source.origin)
    return derived


def is_remote(source):
    """True for a URL that is not a local path or ``file:`` URL (its contents are someone else's data)."""
    if not isinstance(source, str | os.PathLike):
        return False
    from .gopen import local_path

    return local_path(source) is None


def check_pipe(url):
    """Refuse a ``pipe:`` URL under enforce_security, or one from data unless PPWDS_ALLOW_PIPE is set."""
    check_secure("pipe")
    if isinstance(url, DataURL) and not allow_pipe():
        raise UnsafeOperationError(
            f"{url}: refusing to run this pipe: command because it comes from data read from "
            f"{url.origin or 'a remote source'}, not from your code; "
            "set PPWDS_ALLOW_PIPE=1 (or ppwebdataset.gopen.ALLOW_PIPE = True) if you trust that source"
        )


__all__ = [
    "DataURL",
    "SecurityError",
    "allow_pickle",
    "allow_pipe",
    "check_pipe",
    "check_secure",
    "env_flag",
    "env_float",
    "env_int",
    "env_str",
    "from_data",
    "initial_security",
    "is_remote",
    "parse_bool",
    "require_pickle",
    "same_origin",
    "secure",
]
