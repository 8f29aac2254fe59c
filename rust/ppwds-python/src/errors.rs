//! Core errors → Python exceptions.
//!
//! The exception classes live in `ppwebdataset/errors.py` so they can inherit
//! from `tarfile.ReadError` and `ValueError`; they are looked up once.

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
    let build = || -> PyResult<PyErr> {
        let cls = errors_module(py)?.getattr(class_for(&rebuilt.kind))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("url", ctx.url)?;
        kwargs.set_item("member", rebuilt.member.as_deref())?;
        kwargs.set_item("offset", rebuilt.offset)?;
        let exc = cls.call((msg.clone(),), Some(&kwargs))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

/// Wraps a Python exception so it can travel through `std::io::Error`.
pub fn pyerr_to_io(err: PyErr) -> std::io::Error {
    std::io::Error::other(err)
}
