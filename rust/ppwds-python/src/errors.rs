//! Core errors → Python exceptions.
//!
//! The exception classes live in `ppwebdataset/errors.py` so they can inherit
//! from `tarfile.ReadError` and `ValueError`; they are looked up once.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ppwds_core::{Error, ErrorKind};
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyPermissionError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS_MODULE
        .get_or_try_init(py, || py.import("ppwebdataset.errors").map(Bound::unbind))
        .map(|m| m.bind(py))
}

fn class_for(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Truncated(_) => "TruncatedShardError",
        ErrorKind::BadHeader(_) | ErrorKind::Decompress(_) => "CorruptShardError",
        ErrorKind::Unsupported(_) => "UnsupportedMemberError",
        ErrorKind::DuplicateMember { .. } => "DuplicateMemberError",
        _ => "ShardError",
    }
}

/// Where a shard came from, for messages.
pub struct ShardContext<'a> {
    /// The URL as the user wrote it.
    pub url: &'a str,
    /// True when offsets refer to a decompressed stream.
    pub compressed: bool,
}

/// Converts a core error into the matching Python exception.
pub fn to_pyerr(py: Python<'_>, err: Error, ctx: &ShardContext<'_>) -> PyErr {
    let Error {
        kind,
        offset,
        member,
    } = err;
    let kind = match kind {
        ErrorKind::Io(io) => {
            // An exception raised by a Python stream comes back unchanged.
            let io = if io.get_ref().is_some_and(|inner| inner.is::<PyErr>()) {
                match io.into_inner().map(|inner| inner.downcast::<PyErr>()) {
                    Some(Ok(pyerr)) => return *pyerr,
                    _ => std::io::Error::other("I/O error"),
                }
            } else {
                io
            };
            let msg = format!("{io} (shard {:?})", ctx.url);
            return match io.kind() {
                std::io::ErrorKind::NotFound => {
                    PyFileNotFoundError::new_err((2, msg, ctx.url.to_string()))
                }
                std::io::ErrorKind::PermissionDenied => {
                    PyPermissionError::new_err((13, msg, ctx.url.to_string()))
                }
                _ => PyOSError::new_err(msg),
            };
        }
        other => other,
    };
    let rebuilt = Error {
        kind,
        offset,
        member,
    };
    let mut msg = format!("{} in shard {:?}", rebuilt.reason(), ctx.url);
    if let Some(m) = &rebuilt.member {
        msg.push_str(&format!(", member {m:?}"));
    }
    if let Some(o) = rebuilt.offset {
        let note = if ctx.compressed {
            " of the decompressed stream"
        } else {
            ""
        };
        msg.push_str(&format!(", byte offset {o}{note}"));
    }
    shard_exception(
        py,
        class_for(&rebuilt.kind),
        msg,
        ctx.url,
        rebuilt.member.as_deref(),
        rebuilt.offset,
    )
}

fn shard_exception(
    py: Python<'_>,
    class: &str,
    msg: String,
    url: &str,
    member: Option<&str>,
    offset: Option<u64>,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = errors_module(py)?.getattr(class)?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("url", url)?;
        kwargs.set_item("member", member)?;
        kwargs.set_item("offset", offset)?;
        let exc = cls.call((msg,), Some(&kwargs))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

/// A panic caught in the binding: a bug, after which the object that panicked is unusable.
#[derive(Debug)]
pub struct Panicked(pub String);

impl Panicked {
    fn from_payload(payload: Box<dyn Any + Send>) -> Self {
        let msg = match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(p) => match p.downcast::<&'static str>() {
                Ok(s) => (*s).to_string(),
                Err(_) => "unknown panic".to_string(),
            },
        };
        Panicked(msg)
    }

    /// The `CorruptShardError` reported for it. pyo3 would raise `PanicException`, a
    /// `BaseException` that `except Exception`, handlers and DataLoader workers miss.
    pub fn into_pyerr(self, py: Python<'_>, url: &str) -> PyErr {
        let msg = format!(
            "internal error while reading shard {url:?}: {} (please report it; the shard is probably damaged)",
            self.0
        );
        shard_exception(py, "CorruptShardError", msg, url, None, None)
    }
}

/// Runs `f` holding the GIL; a panic comes back as [`Panicked`] instead of unwinding.
pub fn guard<T>(f: impl FnOnce() -> T) -> Result<T, Panicked> {
    catch_unwind(AssertUnwindSafe(f)).map_err(Panicked::from_payload)
}

/// Runs `f` with the GIL released: every GIL release of the reader goes through here.
/// A panic inside comes back as [`Panicked`] instead of unwinding into Python.
pub fn detach<T: Send, F: Send + FnOnce() -> T>(py: Python<'_>, f: F) -> Result<T, Panicked> {
    py.detach(move || catch_unwind(AssertUnwindSafe(f)))
        .map_err(Panicked::from_payload)
}

/// Wraps a Python exception so it can travel through `std::io::Error`.
pub fn pyerr_to_io(err: PyErr) -> std::io::Error {
    std::io::Error::other(err)
}
