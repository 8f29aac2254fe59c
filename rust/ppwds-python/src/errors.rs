//! Core errors → Python exceptions: the one place that picks the class and builds the
//! message, and the one way the binding releases the GIL.
//!
//! The exception classes live in `ppwebdataset/errors.py` so they can inherit
//! from `tarfile.ReadError` and `ValueError`; they are looked up once.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use ppwds_core::{Error, ErrorKind};
use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS_MODULE
        .get_or_try_init(py, || py.import("ppwebdataset.errors").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// Every class of `ppwebdataset.errors` the binding raises (a test checks they exist).
pub const CLASSES: [&str; 5] = [
    "ShardError",
    "TruncatedShardError",
    "CorruptShardError",
    "UnsupportedMemberError",
    "DuplicateMemberError",
];

fn class_for(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Truncated(_) => CLASSES[1],
        ErrorKind::BadHeader(_) | ErrorKind::Decompress(_) | ErrorKind::Panicked(_) => CLASSES[2],
        ErrorKind::Unsupported(_) => CLASSES[3],
        ErrorKind::DuplicateMember { .. } => CLASSES[4],
        _ => CLASSES[0],
    }
}

/// Where a shard came from, for messages.
pub struct ShardContext<'a> {
    /// The URL as the user wrote it.
    pub url: &'a str,
    /// True when offsets refer to a decompressed stream.
    pub compressed: bool,
    /// The local file, named as an `OSError`'s `filename` (the URL when `None`).
    pub path: Option<&'a Path>,
}

impl<'a> ShardContext<'a> {
    /// An uncompressed shard known by its URL only.
    pub fn new(url: &'a str) -> Self {
        ShardContext {
            url,
            compressed: false,
            path: None,
        }
    }
}

/// The one message format: what happened, then shard, member and offset.
pub fn message(err: &Error, ctx: &ShardContext<'_>) -> String {
    if let ErrorKind::Panicked(what) = &err.kind {
        return format!(
            "internal error while reading shard {:?}: {what} (please report it; the shard is probably damaged)",
            ctx.url
        );
    }
    let mut place = format!("shard {:?}", ctx.url);
    if let Some(m) = &err.member {
        place.push_str(&format!(", member {m:?}"));
    }
    let note = if ctx.compressed {
        " of the decompressed stream"
    } else {
        ""
    };
    match (&err.kind, err.offset) {
        (ErrorKind::Io(io), None) => format!("{io} ({place})"),
        (ErrorKind::Io(io), Some(o)) => format!("{io} ({place}, byte offset {o}{note})"),
        (_, Some(o)) => format!("{} in {place}, byte offset {o}{note}", err.reason()),
        (_, None) => format!("{} in {place}, position unknown", err.reason()),
    }
}

/// Converts a core error into the matching Python exception. A Python exception carried
/// inside (raised by a stream, a name filter or a decoder hook) comes back unchanged.
pub fn to_pyerr(py: Python<'_>, err: Error, ctx: &ShardContext<'_>) -> PyErr {
    let err = match take_pyerr(err) {
        Ok(pyerr) => return pyerr,
        Err(err) => err,
    };
    let msg = message(&err, ctx);
    if let ErrorKind::Io(io) = &err.kind {
        let filename = ctx.path.map(|p| p.to_string_lossy().into_owned());
        return os_error(io, msg, filename.as_deref().unwrap_or(ctx.url));
    }
    shard_exception(py, class_for(&err.kind), msg, ctx.url, &err)
}

/// The Python exception inside a callback error (or an I/O error wrapping one).
pub(crate) fn take_pyerr(err: Error) -> Result<PyErr, Error> {
    let Error {
        kind,
        offset,
        member,
    } = err;
    let kind = match kind {
        ErrorKind::External(inner) => match inner.downcast::<PyErr>() {
            Ok(pyerr) => return Ok(*pyerr),
            Err(other) => ErrorKind::External(other),
        },
        ErrorKind::Io(io) if io.get_ref().is_some_and(|e| e.is::<PyErr>()) => {
            match io.into_inner().map(|e| e.downcast::<PyErr>()) {
                Some(Ok(pyerr)) => return Ok(*pyerr),
                _ => ErrorKind::Io(io::Error::other("I/O error")),
            }
        }
        other => other,
    };
    Err(Error {
        kind,
        offset,
        member,
    })
}

/// The one io → `OSError` mapping: CPython picks the subclass from the errno
/// (`FileNotFoundError`, `PermissionError`, ...), which is kept.
pub(crate) fn os_error(io: &io::Error, msg: String, filename: &str) -> PyErr {
    let errno = io.raw_os_error().or(match io.kind() {
        io::ErrorKind::NotFound => Some(2),
        io::ErrorKind::PermissionDenied => Some(13),
        io::ErrorKind::IsADirectory => Some(21),
        _ => None,
    });
    match errno {
        Some(errno) if filename.is_empty() => PyOSError::new_err((errno, msg)),
        Some(errno) => PyOSError::new_err((errno, msg, filename.to_string())),
        None => PyOSError::new_err(msg),
    }
}

fn shard_exception(py: Python<'_>, class: &str, msg: String, url: &str, err: &Error) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = errors_module(py)?.getattr(class)?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("url", url)?;
        kwargs.set_item("member", err.member.as_deref())?;
        kwargs.set_item("offset", err.offset)?;
        let exc = cls.call((msg,), Some(&kwargs))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

/// A Python exception (from a callback, a stream or the binding itself), carried through
/// the core unchanged.
pub fn from_py(err: PyErr) -> Error {
    ErrorKind::External(Box::new(err)).into()
}

/// Wraps a Python exception so it can travel through `std::io::Read`.
pub fn pyerr_to_io(err: PyErr) -> io::Error {
    io::Error::other(err)
}

/// Runs `f` holding the GIL; a panic comes back as an [`ErrorKind::Panicked`] error.
/// pyo3 would raise `PanicException`, a `BaseException` that `except Exception`,
/// handlers and DataLoader workers miss.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(f)).map_err(Error::panicked)
}

/// Runs `f` with the GIL released: every GIL release of the binding goes through here.
/// A panic inside comes back as an [`ErrorKind::Panicked`] error instead of unwinding.
pub fn release<T: Send>(
    py: Python<'_>,
    f: impl Send + FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    py.detach(move || catch_unwind(AssertUnwindSafe(f)))
        .unwrap_or_else(|p| Err(Error::panicked(p)))
}

/// [`release`], with the error (or panic) converted for the shard in `ctx`.
pub fn detach<T: Send>(
    py: Python<'_>,
    ctx: &ShardContext<'_>,
    f: impl Send + FnOnce() -> Result<T, Error>,
) -> PyResult<T> {
    release(py, f).map_err(|e| to_pyerr(py, e, ctx))
}

/// A failure outside any shard (image decoding, writing) as `RuntimeError`.
pub fn internal(what: &str, err: Error) -> PyErr {
    PyRuntimeError::new_err(format!("{what}: {}", err.reason()))
}
