//! xz shards, decoded by CPython's `lzma` module (always present), so the core needs no C library.

use std::io::{self, Read};

use ppwds_core::source::{Compression, DynRead};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{from_py, pyerr_to_io};

const CHUNK: usize = 256 << 10;

/// The decoders the binding adds to the core's ([`ppwds_core::source::ExtraDecoder`]): xz.
/// A failing `lzma` import comes back as the Python exception it raised.
pub fn extra_decoder(kind: Compression, src: DynRead) -> ppwds_core::Result<Option<DynRead>> {
    match kind {
        Compression::Xz => PyXzReader::new(src)
            .map(|r| Some(Box::new(r) as DynRead))
            .map_err(from_py),
        _ => Ok(None),
    }
}

/// Streams decompressed bytes out of `lzma.LZMADecompressor`s (one per concatenated xz stream).
pub struct PyXzReader {
    inner: DynRead,
    decoder: Py<PyAny>,
    out: Vec<u8>,
    pos: usize,
    pending: Vec<u8>,
    input_done: bool,
    finished: bool,
}

fn new_decoder(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(py
        .import("lzma")?
        .getattr("LZMADecompressor")?
        .call0()?
        .unbind())
}

impl PyXzReader {
    /// Wraps the compressed source.
    pub fn new(inner: DynRead) -> PyResult<Self> {
        let decoder = Python::attach(new_decoder)?;
        Ok(PyXzReader {
            inner,
            decoder,
            out: Vec::new(),
            pos: 0,
            pending: Vec::new(),
            input_done: false,
            finished: false,
        })
    }

    fn next_input(&mut self) -> io::Result<Vec<u8>> {
        if !self.pending.is_empty() {
            return Ok(std::mem::take(&mut self.pending));
        }
        if self.input_done {
            return Ok(Vec::new());
        }
        let mut chunk = vec![0u8; CHUNK];
        let n = self.inner.read(&mut chunk)?;
        if n == 0 {
            self.input_done = true;
        }
        chunk.truncate(n);
        Ok(chunk)
    }

    fn refill(&mut self) -> io::Result<()> {
        let needs_input = Python::attach(|py| {
            self.decoder
                .bind(py)
                .getattr("needs_input")?
                .extract::<bool>()
        })
        .map_err(pyerr_to_io)?;
        let data = if needs_input {
            self.next_input()?
        } else {
            Vec::new()
        };
        let (out, eof, unused) = Python::attach(|py| -> PyResult<(Vec<u8>, bool, Vec<u8>)> {
            let dec = self.decoder.bind(py);
            let out = dec.call_method1("decompress", (PyBytes::new(py, &data), CHUNK))?;
            let eof: bool = dec.getattr("eof")?.extract()?;
            let unused = if eof {
                dec.getattr("unused_data")?.extract()?
            } else {
                Vec::new()
            };
            Ok((out.extract()?, eof, unused))
        })
        .map_err(pyerr_to_io)?;
        self.out = out;
        self.pos = 0;
        if eof {
            // Another xz stream may follow (concatenated files), as Python's lzma reads them.
            self.pending = unused;
            if self.pending.is_empty() {
                self.pending = self.next_input()?;
            }
            if self.pending.is_empty() {
                self.finished = true;
            } else {
                self.decoder = Python::attach(new_decoder).map_err(pyerr_to_io)?;
            }
        } else if needs_input && data.is_empty() && self.out.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "xz stream cut short",
            ));
        }
        Ok(())
    }
}

impl Read for PyXzReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.out.len() {
                let n = buf.len().min(self.out.len() - self.pos);
                buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.finished || buf.is_empty() {
                return Ok(0);
            }
            self.refill()?;
        }
    }
}
