"""Opening URLs as binary streams: local files, stdin/stdout, subprocess pipes, curl, cloud CLIs.

Remote schemes run their helper program with an argument list, never through a
shell, so a URL cannot inject commands. ``pipe:`` URLs *are* shell commands;
they are refused unless enabled with ``PPWDS_ALLOW_PIPE=1`` (or by setting
``ppwebdataset.gopen.ALLOW_PIPE = True``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from urllib.parse import urlparse
from urllib.request import url2pathname

from .errors import UnsafeOperationError

#: Set to True to allow ``pipe:`` URLs in this process (same as PPWDS_ALLOW_PIPE=1).
ALLOW_PIPE = False

_SIGPIPE_STATUSES = (141, -13)


def pipe_allowed() -> bool:
    """True when ``pipe:`` URLs may run shell commands."""
    return ALLOW_PIPE or os.environ.get("PPWDS_ALLOW_PIPE", "0") not in ("", "0", "false", "False")


def _verbose() -> bool:
    return bool(int(os.environ.get("GOPEN_VERBOSE", "0") or 0))


class Pipe:
    """A subprocess's stdout (or stdin) that behaves like a file.

    A non-zero exit status raises ``IOError`` naming the command and status
    (SIGPIPE and the statuses in ``ignore_status`` excepted). ``close()`` always
    reaps the child, terminating it if it is still running, so stopping an
    iteration early leaves no process behind.
    """

    def __init__(
        self,
        *args,
        mode=None,
        timeout=7200.0,
        ignore_errors=False,
        ignore_status=None,
        url=None,
        **kw,
    ):
        self.ignore_errors = ignore_errors
        self.ignore_status = [0, *_SIGPIPE_STATUSES, *(ignore_status or [])]
        self.timeout = timeout
        self.args = (args, kw)
        self.url = url
        self.status = None
        mode = mode or "rb"
        if mode[0] == "r":
            self.proc = subprocess.Popen(*args, stdout=subprocess.PIPE, **kw)
            self.stream = self.proc.stdout
        elif mode[0] == "w":
            self.proc = subprocess.Popen(*args, stdin=subprocess.PIPE, **kw)
            self.stream = self.proc.stdin
        else:
            raise ValueError(f"{mode}: unknown mode")
        if self.stream is None:
            raise ValueError(f"{args}: couldn't open")

    def __str__(self):
        return f"<Pipe {self.url or self.args[0]}>"

    def _describe(self):
        return self.url if self.url is not None else self.args[0]

    def check_status(self):
        """Raise if the child has exited with a failure status."""
        if self.status is None and self.proc.poll() is not None:
            self.wait_for_child()

    def wait_for_child(self):
        """Wait for the child and raise on a failure status."""
        if self.status is None:
            self.status = self.proc.wait()
        if _verbose():
            print(f"pipe exit [{self.status} {os.getpid()}:{self.proc.pid}] {self._describe()}", file=sys.stderr)
        if self.status not in self.ignore_status and not self.ignore_errors:
            raise OSError(f"{self._describe()}: exit status {self.status}")

    def read(self, *args, **kw):
        result = self.stream.read(*args, **kw)
        if not result:
            self.wait_for_child()
        else:
            self.check_status()
        return result

    def readinto(self, buf):
        n = self.stream.readinto(buf)
        if not n:
            self.wait_for_child()
        return n

    def write(self, *args, **kw):
        result = self.stream.write(*args, **kw)
        self.check_status()
        return result

    def readLine(self, *args, **kw):
        result = self.stream.readline(*args, **kw)
        self.check_status()
        return result

    readline = readLine

    def readable(self):
        return self.stream.readable()

    def writable(self):
        return self.stream.writable()

    @property
    def closed(self):
        return self.stream.closed

    def close(self):
        """Close the stream and reap the child (terminating it if needed)."""
        if self.stream.closed and self.status is not None:
            return
        finished_reading = self.proc.poll() is not None
        try:
            self.stream.close()
        finally:
            if self.status is None:
                try:
                    # A reader that stopped early: the child gets SIGPIPE or is told to stop.
                    self.status = self.proc.wait(timeout=self.timeout if self.stream is self.proc.stdin else 5)
                except subprocess.TimeoutExpired:
                    self.proc.terminate()
                    try:
                        self.status = self.proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        self.proc.kill()
                        self.status = self.proc.wait()
                    finished_reading = False
        # Only a child that finished on its own is judged by its status.
        if finished_reading or self.stream is self.proc.stdin:
            self.wait_for_child()

    def __enter__(self):
        return self

    def __exit__(self, etype, value, traceback):
        self.close()

    def __del__(self):
        try:
            proc = self.__dict__.get("proc")
            if proc is not None and proc.poll() is None:
                self.stream.close()
                proc.terminate()
                proc.wait(timeout=5)
        except Exception:
            pass


def set_options(obj, timeout=None, ignore_errors=None, ignore_status=None, handler=None):
    """Set pipe options on a stream returned by gopen (no-op on plain files)."""
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
    env = os.environ.get("GOPEN_BUFFER")
    if env:
        return int(env)
    return -1 if bufsize in (None, 8192) else bufsize


def gopen_file(url, mode="rb", bufsize=8192):
    """Open a local path or ``file:`` URL."""
    pr = urlparse(url)
    if pr.scheme == "file":
        path = url2pathname(pr.path) if pr.netloc in ("", "localhost") else url2pathname("//" + pr.netloc + pr.path)
    else:
        path = url
    return open(path, mode, buffering=_buffering(bufsize))


def gopen_pipe(url, mode="rb", bufsize=8192):
    """Run a ``pipe:`` shell command (only when pipes are enabled)."""
    if not pipe_allowed():
        raise UnsafeOperationError(
            f"{url}: pipe: URLs run shell commands and are disabled by default; "
            "set PPWDS_ALLOW_PIPE=1 or ppwebdataset.gopen.ALLOW_PIPE = True to allow them"
        )
    cmd = url[5:] if url.startswith("pipe:") else url
    if mode[0] not in "rw":
        raise ValueError(f"{mode}: unknown mode")
    return Pipe(cmd, mode=mode, shell=True, bufsize=bufsize, url=url)


def _run(argv, url, mode, bufsize, ignore_status=()):
    if mode[0] not in "rw":
        raise ValueError(f"{mode}: unknown mode")
    return Pipe(argv, mode=mode, bufsize=bufsize, ignore_status=list(ignore_status), url=url)


CURL_OPTIONS = ["--connect-timeout", "30", "--retry", "30", "--retry-delay", "2", "-f", "-s", "-S", "-L"]


def gopen_curl(url, mode="rb", bufsize=8192):
    """Download (or upload) with curl; the URL is an argument, never shell text."""
    if mode[0] == "r":
        return _run(["curl", *CURL_OPTIONS, "--", url], url, mode, bufsize, ignore_status=[23, 26])
    return _run(["curl", *CURL_OPTIONS, "-T", "-", "--", url], url, mode, bufsize, ignore_status=[26])


def gopen_htgs(url, mode="rb", bufsize=8192):
    """``htgs://bucket/path``: a public Google Cloud Storage object over https."""
    return gopen_curl(re.sub(r"^htgs://", "https://storage.googleapis.com/", url), mode, bufsize)


def gopen_hf(url, mode="rb", bufsize=8192):
    """``hf://`` Hugging Face Hub URLs via curl; the token goes through a config on stdin, not argv."""
    if mode[0] != "r":
        raise ValueError(f"{url}: hf: URLs are read-only")
    https = re.sub(r"^hf://", "https://huggingface.co/", url)
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if not token:
        return gopen_curl(https, mode, bufsize)
    argv = ["curl", *CURL_OPTIONS, "-K", "-", "--", https]
    p = Pipe(argv, mode=mode, bufsize=bufsize, ignore_status=[23, 26], url=url, stdin=subprocess.PIPE)
    p.proc.stdin.write(f'header = "Authorization: Bearer {token}"\n'.encode())
    p.proc.stdin.close()
    return p


def gopen_gsutil(url, mode="rb", bufsize=8192):
    """``gs://`` via ``gsutil cat`` / ``gsutil cp - url``."""
    if mode[0] == "r":
        return _run(["gsutil", "cat", url], url, mode, bufsize, ignore_status=[141, 23])
    return _run(["gsutil", "cp", "-", url], url, mode, bufsize, ignore_status=[141, 26])


def gopen_s3(url, mode="rb", bufsize=8192):
    """``s3://`` via the AWS CLI (``aws s3 cp``)."""
    if mode[0] == "r":
        return _run(["aws", "s3", "cp", "--", url, "-"], url, mode, bufsize)
    return _run(["aws", "s3", "cp", "--", "-", url], url, mode, bufsize)


def gopen_ais(url, mode="rb", bufsize=8192):
    """``ais://`` via the AIStore CLI."""
    if mode[0] == "r":
        return _run(["ais", "get", url, "-"], url, mode, bufsize, ignore_status=[141])
    return _run(["ais", "put", "-", url], url, mode, bufsize, ignore_status=[141, 26])


def gopen_error(url, *args, **kw):
    """Raise for an unknown scheme."""
    raise ValueError(f"{url}: no gopen handler defined")


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

if "USE_AIS_FOR" in os.environ:
    for _proto in os.environ["USE_AIS_FOR"].split(":"):
        if _proto:
            gopen_schemes[_proto] = gopen_ais


def rewrite_url(url):
    """Apply the first matching ``GOPEN_REWRITE="prefix=replacement;..."`` rule."""
    rules = os.environ.get("GOPEN_REWRITE")
    if not rules:
        return url
    for rule in rules.split(";"):
        if "=" not in rule:
            continue
        old, new = rule.split("=", 1)
        if old and url.startswith(old):
            if _verbose():
                print(f"GOPEN REWRITE {url} -> {new + url[len(old) :]}", file=sys.stderr)
            return new + url[len(old) :]
    return url


def _is_windows_drive(url: str) -> bool:
    return len(url) >= 2 and url[1] == ":" and url[0].isalpha() and (len(url) == 2 or url[2] in "\\/")


def scheme_of(url) -> str:
    """The URL scheme, ``""`` for local paths (including Windows drive paths)."""
    url = os.fspath(url) if hasattr(url, "__fspath__") else url
    if _is_windows_drive(url):
        return ""
    return urlparse(url).scheme


def local_path(url):
    """The filesystem path of a local URL, or None for remote ones."""
    if hasattr(url, "__fspath__"):
        return os.fspath(url)
    if not isinstance(url, str):
        return None
    scheme = scheme_of(url)
    if scheme == "":
        return url
    if scheme == "file":
        pr = urlparse(url)
        return url2pathname(pr.path)
    return None


def gopen(url, mode="rb", bufsize=8192, **kw):
    """Open ``url`` for reading (``"rb"``) or writing (``"wb"``).

    Local paths and ``file:`` URLs are opened directly; ``-`` is stdin/stdout;
    other schemes dispatch through ``gopen_schemes``.
    """
    if _verbose():
        print("GOPEN", url, file=sys.stderr)
    if mode not in ("rb", "wb"):
        raise ValueError(f"{mode}: only 'rb' and 'wb' are supported")
    if hasattr(url, "__fspath__"):
        url = os.fspath(url)
    if url == "-":
        return sys.stdin.buffer if mode == "rb" else sys.stdout.buffer
    url = rewrite_url(url)
    scheme = scheme_of(url)
    if scheme in ("", "file"):
        return gopen_file(url, mode, bufsize)
    handler = gopen_schemes.get(scheme, gopen_schemes["__default__"])
    return handler(url, mode, bufsize, **kw)


def reader(url, **kw):
    """``gopen(url, "rb")``."""
    return gopen(url, "rb", **kw)


__all__ = [
    "ALLOW_PIPE",
    "Pipe",
    "gopen",
    "gopen_schemes",
    "gopen_file",
    "gopen_pipe",
    "gopen_curl",
    "gopen_htgs",
    "gopen_hf",
    "gopen_gsutil",
    "gopen_s3",
    "gopen_ais",
    "gopen_error",
    "local_path",
    "pipe_allowed",
    "reader",
    "rewrite_url",
    "scheme_of",
    "set_options",
]
