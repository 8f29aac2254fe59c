"""Opening URLs as binary streams: local files, stdin/stdout, subprocess pipes, curl, cloud CLIs.

Remote schemes run their helper program with an argument list, never through a
shell, so a URL cannot inject commands. ``pipe:`` URLs *are* shell commands: the
user's own ones run as in webdataset, but one that came from data (a
:class:`~ppwebdataset._settings.DataURL`: read from a remote shard list,
descriptor or spec) is refused unless ``PPWDS_ALLOW_PIPE=1`` (or
``ppwebdataset.gopen.ALLOW_PIPE = True``). ``ppwebdataset.utils.enforce_security
= True`` (``WDS_SECURE=1``) refuses pipes, local files and rewriting, as in 1.0.2.

Environment variables: ``GOPEN_VERBOSE`` (log opens and exits to stderr),
``GOPEN_BUFFER`` (buffer size for local files), ``GOPEN_REWRITE``
(``"prefix=replacement;..."``), ``USE_AIS_FOR`` (``"gs:s3"``: open those schemes
with the AIStore CLI), ``HF_TOKEN`` / ``HF_ENDPOINT`` (``hf:`` URLs).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import weakref
from subprocess import PIPE, Popen
from urllib.parse import quote, unquote, urlparse
from urllib.request import url2pathname

from . import _settings

#: Set to True to allow ``pipe:`` URLs that came from data (same as PPWDS_ALLOW_PIPE=1). Setting
#: ``ppwebdataset.gopen.ALLOW_PIPE`` (an attribute of the function of that name) works too.
ALLOW_PIPE = False

#: Extra node information shown in verbose output (kept from upstream).
info: dict = {}

# A reader that stops early makes the writer die of SIGPIPE: as a shell status
# (141) or as a signal (-13) when the child is not a shell.
_SIGPIPE_STATUSES = (141, -getattr(signal, "SIGPIPE", 13))

_POSIX = os.name == "posix"

# Seconds a stopped child gets to exit after SIGTERM before it is killed.
_TERM_GRACE = 5.0

# How much of a helper's stderr goes into an error message.
_STDERR_TAIL = 2000


def pipe_allowed() -> bool:
    """True when ``pipe:`` URLs that came from data may run (the user's own always may)."""
    return _settings.allow_pipe()


def _verbose() -> bool:
    return _settings.env_flag("GOPEN_VERBOSE")


_logger = logging.getLogger(__name__)


def _note(msg: str) -> None:
    """Print to stderr under GOPEN_VERBOSE, else log at DEBUG."""
    if _verbose():
        print(msg, file=sys.stderr, flush=True)
    else:
        _logger.debug(msg)


# Pipes not yet closed; reaped at interpreter exit so no child outlives us.
_LIVE: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _reap_live_pipes():
    for pipe in list(_LIVE):
        pipe._abandon()


class Pipe:
    """A subprocess's stdout (mode ``"rb"``) or stdin (mode ``"wb"``) used as a file.

    * A failing child raises ``OSError`` naming the URL (or command) and its exit
      status, plus the tail of its stderr when that was captured. Statuses in
      ``ignore_status`` (0 and SIGPIPE always) do not count as failures.
    * Readers: the status is checked after each read and at end of data, so a
      failure surfaces before the consumer can mistake a cut stream for a whole
      one. ``close()`` never raises: a reader that stops early has what it
      wanted, and closing often runs in ``finally`` blocks. A child still running
      is terminated (for shell pipes, with its whole process group).
    * Writers: ``close()`` waits up to ``timeout`` seconds for the child and
      raises if it failed (that is where an upload failure shows).
    * An unclosed Pipe that is garbage collected, or still open at exit, is
      cleaned up quietly (a writer's child is still allowed to finish).
    """

    def __init__(
        self,
        *args,
        mode=None,
        timeout=7200.0,
        ignore_errors=False,
        ignore_status=[],  # noqa: B006 - upstream's default, only ever copied
        url=None,
        capture_stderr=False,
        **kw,
    ):
        mode = mode or "rb"
        if mode[0] not in "rw":
            raise ValueError(f"{mode}: unknown mode")
        self.mode = mode
        self.ignore_errors = ignore_errors
        self.ignore_status = [0, *_SIGPIPE_STATUSES, *(ignore_status or [])]
        self.timeout = timeout
        self.args = (args, kw)
        self.url = url
        self.status = None
        self._reported = False
        self._closed = False
        self._group = _POSIX and bool(kw.get("process_group") == 0 or kw.get("start_new_session"))
        self._stderr = None
        if capture_stderr and "stderr" not in kw:
            self._stderr = tempfile.TemporaryFile()
            kw["stderr"] = self._stderr
        try:
            if mode[0] == "r":
                self.proc = Popen(*args, stdout=PIPE, **kw)
                self.stream = self.proc.stdout
            else:
                self.proc = Popen(*args, stdin=PIPE, **kw)
                self.stream = self.proc.stdin
        except BaseException:
            if self._stderr is not None:
                self._stderr.close()
            raise
        _LIVE.add(self)
        _note(f"# pipe start [{os.getpid()}:{self.proc.pid}] {self._describe()} {info or ''}")

    def __repr__(self):
        return f"<Pipe {self._describe()!r} mode={self.mode!r} pid={self.proc.pid}>"

    __str__ = __repr__

    def _describe(self):
        if self.url is not None:
            return self.url
        cmd = self.args[0][0] if self.args[0] else self.args[1].get("args")
        return cmd if isinstance(cmd, str) else " ".join(map(str, cmd))

    def _program(self):
        cmd = self.args[0][0] if self.args[0] else self.args[1].get("args")
        if isinstance(cmd, list | tuple) and cmd:
            return os.path.basename(str(cmd[0]))
        return "shell command"

    def _stderr_tail(self) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        try:
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - _STDERR_TAIL))
            return self._stderr.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def _judge(self):
        """Raise (once) if the reaped child failed."""
        if self._reported:
            return
        self._reported = True
        _note(f"# pipe exit [{self.status} {os.getpid()}:{self.proc.pid}] {self._describe()} {info or ''}")
        if self.status in self.ignore_status or self.ignore_errors:
            return
        if self.status < 0:
            how = f"was killed by signal {-self.status}"
        else:
            how = f"failed with exit status {self.status}"
        msg = f"{self._describe()}: {self._program()} {how}"
        tail = self._stderr_tail()
        if tail:
            msg += f" ({tail})"
        raise OSError(msg)

    def check_status(self):
        """Raise if the child has already exited with a failure status."""
        if self.status is None:
            status = self.proc.poll()
            if status is None:
                return
            self.status = status
        self._judge()

    def wait_for_child(self):
        """Wait for the child to exit and raise on a failure status."""
        if self.status is None:
            self.status = self.proc.wait()
        self._judge()

    def finish_reading(self):
        """Called when a reader got all it needs (a tar's end marker): read the rest of the
        output and reap the child, raising if it failed, so a failing command is noticed
        even when its output looked complete."""
        if self.mode[0] != "r" or self._closed:
            return
        if self.status is None:
            with contextlib.suppress(OSError, ValueError):
                while self.stream.read(1 << 16):
                    pass
        self.wait_for_child()

    def read(self, size=-1):
        if size == 0:
            return b""
        data = self.stream.read(size)
        if data:
            self.check_status()
        else:
            self.wait_for_child()
        return data

    def read1(self, size=-1):
        if size == 0:
            return b""
        data = self.stream.read1(size)
        if data:
            self.check_status()
        else:
            self.wait_for_child()
        return data

    def readinto(self, buf):
        if memoryview(buf).nbytes == 0:
            return 0
        n = self.stream.readinto(buf)
        if n:
            self.check_status()
        else:
            self.wait_for_child()
        return n

    def readline(self, size=-1):
        data = self.stream.readline(size)
        if data:
            self.check_status()
        else:
            self.wait_for_child()
        return data

    readLine = readline

    def write(self, data):
        try:
            n = self.stream.write(data)
        except BrokenPipeError:
            self.wait_for_child()
            raise
        self.check_status()
        return n

    def flush(self):
        if self.mode[0] == "w":
            self.stream.flush()

    def readable(self):
        return self.mode[0] == "r"

    def writable(self):
        return self.mode[0] == "w"

    def seekable(self):
        return False

    def fileno(self):
        return self.stream.fileno()

    @property
    def closed(self):
        return self._closed

    def _stop(self):
        """Terminate a child that is still running; returns its status."""
        try:
            if self._group:
                os.killpg(self.proc.pid, signal.SIGTERM)
            else:
                self.proc.terminate()
        except ProcessLookupError:
            pass
        try:
            return self.proc.wait(timeout=_TERM_GRACE)
        except subprocess.TimeoutExpired:
            try:
                if self._group:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                else:
                    self.proc.kill()
            except ProcessLookupError:
                pass
            return self.proc.wait()

    def _finish(self):
        self._closed = True
        _LIVE.discard(self)
        if self._stderr is not None:
            self._stderr.close()

    def close(self):
        """Close the stream and reap the child (a writer's failure raises here)."""
        if self._closed:
            return
        try:
            if self.mode[0] == "r":
                self._close_reader()
            else:
                try:
                    self.stream.close()
                except BrokenPipeError:
                    pass
                if self.status is None:
                    try:
                        self.status = self.proc.wait(timeout=self.timeout)
                    except subprocess.TimeoutExpired:
                        self.status = self._stop()
                        self._reported = True
                        raise OSError(
                            f"{self._describe()}: {self._program()} did not finish within {self.timeout} s"
                        ) from None
                self.wait_for_child()
        finally:
            self._finish()

    def _close_reader(self):
        running = self.status is None and self.proc.poll() is None
        with contextlib.suppress(OSError):
            self.stream.close()
        if running:
            self.status = self._stop()  # the rest of the output is unwanted
        elif self.status is None:
            self.status = self.proc.returncode
        if not self._reported:
            self._reported = True
            _note(f"# pipe closed [{self.status} {os.getpid()}:{self.proc.pid}] {self._describe()}")

    def _abandon(self):
        """Quiet cleanup for garbage collection and interpreter exit."""
        if self._closed:
            return
        try:
            if self.mode[0] == "r":
                self._close_reader()
            else:
                with contextlib.suppress(OSError):
                    self.stream.close()
                if self.status is None:
                    try:
                        self.status = self.proc.wait(timeout=self.timeout)
                    except subprocess.TimeoutExpired:
                        self.status = self._stop()
        except Exception:
            pass
        finally:
            self._finish()

    def __enter__(self):
        return self

    def __exit__(self, etype, value, traceback):
        self.close()

    def __del__(self):
        if "proc" in self.__dict__:
            self._abandon()


def set_options(obj, timeout=None, ignore_errors=None, ignore_status=None, handler=None):
    """Set pipe options on a stream returned by gopen; returns False for non-pipes."""
    if not isinstance(obj, Pipe):
        return False
    if timeout is not None:
        obj.timeout = timeout
    if ignore_errors is not None:
        obj.ignore_errors = ignore_errors
    if ignore_status is not None:
        obj.ignore_status = [0, *_SIGPIPE_STATUSES, *ignore_status]
    if handler is not None:
        obj.handler = handler
    return True


def _buffering(bufsize):
    env = _settings.env_int("GOPEN_BUFFER")
    if env is not None:
        return env
    # 8192 is the signature default; treat it as "let Python choose".
    return -1 if bufsize in (None, 8192) else bufsize


def _file_url_path(url: str) -> str:
    """The filesystem path of a ``file:`` URL (percent-escapes decoded)."""
    pr = urlparse(url)
    if pr.netloc in ("", "localhost"):
        return url2pathname(pr.path)
    if os.name == "nt":
        return url2pathname("//" + pr.netloc + pr.path)
    # ppwebdataset 0.2.86 read ``file://dir/x.tar`` as the relative path ``dir/x.tar``.
    return url2pathname(pr.netloc + pr.path)


def gopen_file(url, mode="rb", bufsize=8192):
    """Open a local path or ``file:`` URL."""
    _settings.check_secure("local")
    path = _file_url_path(url) if scheme_of(url) == "file" else url
    return open(path, mode, buffering=_buffering(bufsize))


def gopen_pipe(url, mode="rb", bufsize=8192):
    """Run a ``pipe:`` shell command (one that came from data needs PPWDS_ALLOW_PIPE=1)."""
    _settings.check_pipe(url)
    if mode[0] not in "rw":
        raise ValueError(f"{mode}: unknown mode")
    cmd = url[5:] if url.startswith("pipe:") else url
    # Own process group, so stopping early also stops the commands the shell started.
    group = dict(process_group=0) if _POSIX else {}
    # stderr is kept for the error message (shown live under GOPEN_VERBOSE=1), as for curl.
    return Pipe(cmd, mode=mode, shell=True, bufsize=bufsize, url=url, capture_stderr=not _verbose(), **group)


def _run(argv, url, mode, bufsize, ignore_status=(), **kw):
    if mode[0] not in "rw":
        raise ValueError(f"{mode}: unknown mode")
    try:
        return Pipe(
            argv,
            mode=mode,
            bufsize=bufsize,
            ignore_status=list(ignore_status),
            url=url,
            capture_stderr=not _verbose(),
            **kw,
        )
    except FileNotFoundError as exn:
        raise FileNotFoundError(
            exn.errno, f"{url}: the {argv[0]!r} program, needed for this URL scheme, is not on PATH"
        ) from exn


#: Options for every curl call: retry transient errors, fail on HTTP errors, and no URL
#: globbing (braces were expanded already; a literal `{` or `[` must stay literal).
CURL_OPTIONS = ["--connect-timeout", "30", "--retry", "30", "--retry-delay", "2", "-f", "-s", "-S", "-L", "--globoff"]


def gopen_curl(url, mode="rb", bufsize=8192):
    """Download (or upload with PUT) via curl; the URL is an argument, never shell text."""
    if mode[0] == "r":
        return _run(["curl", *CURL_OPTIONS, "--", url], url, mode, bufsize, ignore_status=[23])
    if mode[0] == "w":
        return _run(["curl", *CURL_OPTIONS, "-T", "-", "--", url], url, mode, bufsize, ignore_status=[26])
    raise ValueError(f"{mode}: unknown mode")


def gopen_htgs(url, mode="rb", bufsize=8192):
    """``htgs://bucket/path``: a public Google Cloud Storage object over https (read-only)."""
    if mode[0] != "r":
        raise ValueError(f"{url}: htgs: URLs are read-only")
    return gopen_curl(re.sub(r"(?i)^htgs://", "https://storage.googleapis.com/", url), mode, bufsize)


_HF_REF = re.compile(r"^refs/(pr|convert)/[^/]+")


def hf_to_https(url: str) -> str:
    """Map ``hf://[datasets/|spaces/]owner/repo[@revision]/path`` to its download URL.

    The host is ``HF_ENDPOINT`` (default ``https://huggingface.co``).
    """
    rest = re.sub(r"(?i)^hf://", "", url)
    kind = ""
    head, _, tail = rest.partition("/")
    if head in ("datasets", "spaces"):
        kind, rest = head + "/", tail
    owner, _, rest = rest.partition("/")
    repo, _, path = rest.partition("/")
    revision = "main"
    if "@" in repo:
        repo, _, revision = repo.partition("@")
        if revision == "refs":
            # ``@refs/pr/1/file``: the revision itself contains slashes.
            m = _HF_REF.match("refs/" + path)
            if m is None:
                raise ValueError(f"{url}: cannot parse the revision")
            revision = m.group(0)
            path = ("refs/" + path)[m.end() + 1 :]
        revision = unquote(revision)
    if not owner or not repo or not path:
        raise ValueError(f"{url}: expected hf://[datasets/|spaces/]<owner>/<repo>[@revision]/<path>")
    endpoint = _settings.env_str("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    return f"{endpoint}/{kind}{owner}/{repo}/resolve/{quote(revision, safe='')}/{quote(path, safe='/')}"


def _hf_token():
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        token = _settings.env_str(name, "").strip()
        if token:
            return token
    home = _settings.env_str("HF_HOME") or os.path.join(
        _settings.env_str("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    path = _settings.env_str("HF_TOKEN_PATH") or os.path.join(os.path.expanduser(home), "token")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def gopen_hf(url, mode="rb", bufsize=8192):
    """``hf://`` Hugging Face Hub files via curl (read-only).

    The token (``HF_TOKEN``, else the ``huggingface-cli login`` token file) is
    handed to curl as a config on stdin, so it never appears on a command line.
    """
    if mode[0] != "r":
        raise ValueError(f"{url}: hf: URLs are read-only")
    https = hf_to_https(url)
    token = _hf_token()
    if not token:
        return _run(["curl", *CURL_OPTIONS, "--", https], url, mode, bufsize, ignore_status=[23])
    argv = ["curl", *CURL_OPTIONS, "-K", "-", "--", https]
    pipe = _run(argv, url, mode, bufsize, ignore_status=[23], stdin=PIPE)
    escaped = token.replace("\\", "\\\\").replace('"', '\\"')
    try:
        pipe.proc.stdin.write(f'header = "Authorization: Bearer {escaped}"\n'.encode())
    except BrokenPipeError:
        pass  # curl already failed; its status is reported on read
    finally:
        try:
            pipe.proc.stdin.close()
        except BrokenPipeError:
            pass
    return pipe


def gopen_gsutil(url, mode="rb", bufsize=8192):
    """``gs://`` via ``gsutil cat`` / ``gsutil cp - <url>``."""
    if mode[0] == "r":
        return _run(["gsutil", "cat", url], url, mode, bufsize, ignore_status=[23])
    if mode[0] == "w":
        return _run(["gsutil", "cp", "-", url], url, mode, bufsize, ignore_status=[26])
    raise ValueError(f"{mode}: unknown mode")


def gopen_s3(url, mode="rb", bufsize=8192):
    """``s3://`` via the AWS CLI (``aws s3 cp <url> -`` / ``aws s3 cp - <url>``)."""
    if mode[0] == "r":
        return _run(["aws", "s3", "cp", url, "-"], url, mode, bufsize)
    if mode[0] == "w":
        return _run(["aws", "s3", "cp", "-", url], url, mode, bufsize)
    raise ValueError(f"{mode}: unknown mode")


def gopen_ais(url, mode="rb", bufsize=8192):
    """``ais://`` (and schemes listed in ``USE_AIS_FOR``) via the AIStore CLI."""
    if mode[0] == "r":
        return _run(["ais", "get", url, "-"], url, mode, bufsize, ignore_status=[23])
    if mode[0] == "w":
        return _run(["ais", "put", "-", url], url, mode, bufsize, ignore_status=[26])
    raise ValueError(f"{mode}: unknown mode")


def gopen_error(url, *args, **kw):
    """Raise for an unknown scheme, naming the ones that are supported."""
    known = sorted({"file", *(s for s in gopen_schemes if s != "__default__"), *_ais_schemes()})
    raise ValueError(
        f"{url}: no gopen handler for scheme {scheme_of(url)!r}; supported: {', '.join(known)} "
        "(or a local path; add openers to ppwebdataset.gopen_schemes)"
    )


#: Scheme -> opener; add entries to support more schemes.
gopen_schemes = dict(
    __default__=gopen_error,
    pipe=gopen_pipe,
    http=gopen_curl,
    https=gopen_curl,
    sftp=gopen_curl,
    ftps=gopen_curl,
    scp=gopen_curl,
    gs=gopen_gsutil,
    s3=gopen_s3,
    ais=gopen_ais,
    htgs=gopen_htgs,
    hf=gopen_hf,
)


def _ais_schemes():
    return {p for p in _settings.env_str("USE_AIS_FOR", "").split(":") if p}


def rewrite_url(url):
    """Apply the first matching ``GOPEN_REWRITE="prefix=replacement;..."`` rule.

    A rule's left side is a literal prefix; failing that it is tried as a regular
    expression anchored at the start (upstream treated it as a regex).
    """
    rules = _settings.env_str("GOPEN_REWRITE")
    if not rules:
        return url
    _settings.check_secure("rewrite")
    for rule in rules.split(";"):
        if "=" not in rule:
            continue
        old, new = rule.split("=", 1)
        if not old:
            continue
        if url.startswith(old):
            result = new + url[len(old) :]
        else:
            try:
                m = re.match(old, url)
            except re.error:
                m = None
            if m is None or m.end() == 0:
                continue
            result = new + url[m.end() :]
        _note(f"# GOPEN REWRITE {url} -> {result}")
        # A URL that came from data stays data after rewriting (a rule may turn it into pipe:).
        return _settings.same_origin(url, result)
    return url


def _is_windows_drive(url: str) -> bool:
    return len(url) >= 2 and url[1] == ":" and url[0].isalpha() and (len(url) == 2 or url[2] in "\\/")


def scheme_of(url) -> str:
    """The URL scheme, ``""`` for local paths (including Windows drive paths)."""
    url = os.fspath(url)
    if _is_windows_drive(url):
        return ""
    return urlparse(url).scheme


def local_path(url):
    """The filesystem path of a local path or ``file:`` URL; None for anything else."""
    if hasattr(url, "__fspath__"):
        return os.fspath(url)
    if not isinstance(url, str) or url == "-":
        return None
    scheme = scheme_of(url)
    if scheme == "":
        return url
    if scheme == "file":
        return _file_url_path(url)
    return None


def gopen(url, mode="rb", bufsize=8192, **kw):
    """Open ``url`` for reading (``"rb"``) or writing (``"wb"``).

    Local paths and ``file:`` URLs are opened directly; ``-`` is stdin/stdout;
    other schemes dispatch through ``gopen_schemes`` (after ``GOPEN_REWRITE``).
    """
    if mode not in ("rb", "wb"):
        raise ValueError(f"{mode}: only 'rb' and 'wb' are supported")
    url = os.fspath(url)
    _note(f"# GOPEN {url} {info or ''}")
    if url == "-":
        return sys.stdin.buffer if mode == "rb" else sys.stdout.buffer
    url = rewrite_url(url)
    scheme = scheme_of(url)
    if scheme in ("", "file"):
        return gopen_file(url, mode, bufsize)
    if scheme in _ais_schemes():
        return gopen_ais(url, mode, bufsize, **kw)
    handler = gopen_schemes.get(scheme, gopen_schemes["__default__"])
    return handler(url, mode, bufsize, **kw)


gopen.ALLOW_PIPE = False  # type: ignore[attr-defined]


def reader(url, **kw):
    """``gopen(url, "rb")``."""
    return gopen(url, "rb", **kw)


__all__ = [
    "ALLOW_PIPE",
    "CURL_OPTIONS",
    "Pipe",
    "gopen",
    "gopen_ais",
    "gopen_curl",
    "gopen_error",
    "gopen_file",
    "gopen_gsutil",
    "gopen_hf",
    "gopen_htgs",
    "gopen_pipe",
    "gopen_s3",
    "gopen_schemes",
    "hf_to_https",
    "info",
    "local_path",
    "pipe_allowed",
    "reader",
    "rewrite_url",
    "scheme_of",
    "set_options",
]
