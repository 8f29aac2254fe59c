//! `TarEncoder`: turns whole samples into tar members in one call.
//!
//! Python's `TarWriter` hands each sample dict to `write`; the common value
//! types (bytes, str, ints for `cls`-like extensions) are encoded here, other
//! values go through the Python handler table. Members of many samples are
//! collected in one buffer and passed to the stream's `write` in large chunks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use ppwds_core::tar::header::BLOCK;
use ppwds_core::tar::writer::{
    append_padding, check_name, end_of_archive_len, HeaderTemplate, MemberMeta,
};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyByteArray, PyBytes, PyDict, PyInt, PyMemoryView, PyString};

/// Payloads at least this large are passed to the stream as they are (no copy).
const DIRECT_WRITE: usize = 1 << 20;
/// Copies and compression at least this large run without the GIL.
const DETACH_AT: usize = 256 << 10;

enum Payload<'py> {
    Shared(Bound<'py, PyBytes>),
    Owned(Vec<u8>),
}

impl Payload<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Shared(b) => b.as_bytes(),
            Payload::Owned(v) => v,
        }
    }
}

/// UTF-8 bytes of a str; lone surrogates (from undecodable names) round-trip like tarfile does.
fn str_bytes<'a>(s: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, [u8]>> {
    match s.to_str() {
        Ok(t) => Ok(Cow::Borrowed(t.as_bytes())),
        Err(_) => {
            let b = s.call_method1("encode", ("utf-8", "surrogateescape"))?;
            Ok(Cow::Owned(b.cast::<PyBytes>()?.as_bytes().to_vec()))
        }
    }
}

/// A bytes-like value as a payload, or `None` when it is not bytes-like.
fn bytes_like<'py>(v: &Bound<'py, PyAny>) -> PyResult<Option<Payload<'py>>> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(Some(Payload::Shared(b.clone())));
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(Some(Payload::Owned(b.to_vec())));
    }
    if v.is_instance_of::<PyMemoryView>() {
        // tobytes() flattens any shape; len() of a memoryview would not be its size.
        let b = v.call_method0("tobytes")?;
        return Ok(Some(Payload::Shared(b.cast_into::<PyBytes>()?)));
    }
    Ok(None)
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Encodes samples as tar members and writes them to a Python binary stream.
#[pyclass(module = "ppwebdataset._core", name = "TarEncoder")]
pub struct PyTarEncoder {
    write: Py<PyAny>,
    template: HeaderTemplate,
    fixed_mtime: bool,
    keep_meta: bool,
    handlers: Option<Py<PyDict>>,
    int_encoder: Option<Py<PyAny>>,
    ext_names: HashMap<String, Py<PyString>>,
    buf: Vec<u8>,
    zero_copy: bool,
    flush_at: usize,
    written: u64,
    finished: bool,
}

impl PyTarEncoder {
    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// Passes `data` to the stream's `write`, looping over short writes.
    fn write_all(&self, py: Python<'_>, data: &Bound<'_, PyBytes>) -> PyResult<()> {
        let total = data.as_bytes().len();
        let write = self.write.bind(py);
        let mut done = write_once(write, data.as_any(), total)?;
        while done < total {
            let rest = PyBytes::new(py, &data.as_bytes()[done..]);
            let n = write_once(write, rest.as_any(), total - done)?;
            done += n;
        }
        Ok(())
    }

    fn flush_buf(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = if self.zero_copy {
            self.write_borrowed(py)
        } else {
            let chunk = PyBytes::new(py, &self.buf);
            self.write_all(py, &chunk)
        };
        self.buf.clear();
        result
    }

    /// Writes `buf` through read-only memoryviews over it (no copy).
    ///
    /// Only used for stream types known not to keep a reference to what
    /// they are given, since the memory is reused afterwards.
    fn write_borrowed(&self, py: Python<'_>) -> PyResult<()> {
        let write = self.write.bind(py);
        let total = self.buf.len();
        let mut done = 0;
        while done < total {
            let rest = &self.buf[done..];
            // SAFETY: `rest` stays alive and unchanged until the view is released below.
            let view = unsafe {
                let ptr = ffi::PyMemoryView_FromMemory(
                    rest.as_ptr() as *mut std::os::raw::c_char,
                    rest.len() as ffi::Py_ssize_t,
                    ffi::PyBUF_READ,
                );
                Bound::from_owned_ptr_or_err(py, ptr)?
            };
            let n = write_once(write, &view, rest.len());
            view.call_method0("release")?;
            done += n?;
        }
        Ok(())
    }

    fn handler_for<'py>(
        &mut self,
        py: Python<'py>,
        ext: &str,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(handlers) = &self.handlers else {
            return Ok(None);
        };
        let name = match self.ext_names.get(ext) {
            Some(n) => n.bind(py).clone(),
            None => {
                let n = PyString::new(py, ext);
                if self.ext_names.len() < 4096 {
                    self.ext_names.insert(ext.to_string(), n.clone().unbind());
                }
                n
            }
        };
        handlers.bind(py).get_item(name)
    }

    /// Encodes one non-metadata field with the handler table.
    fn encode_field<'py>(
        &mut self,
        py: Python<'py>,
        field: &str,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Payload<'py>> {
        let (base, gz) = match field.strip_suffix(".gz") {
            Some(b) => (b, true),
            None => (field, false),
        };
        let payload = if let Some(p) = bytes_like(value)? {
            p
        } else if let Ok(s) = value.cast::<PyString>() {
            match str_bytes(s)? {
                Cow::Borrowed(b) => Payload::Owned(b.to_vec()),
                Cow::Owned(b) => Payload::Owned(b),
            }
        } else {
            let last = base.rsplit('.').next().unwrap_or(base);
            let ext: Cow<'_, str> = if last.is_ascii() {
                Cow::Owned(last.to_ascii_lowercase())
            } else {
                Cow::Owned(
                    PyString::new(py, last)
                        .call_method0("lower")?
                        .extract::<String>()?,
                )
            };
            let Some(handler) = self.handler_for(py, &ext)? else {
                return Err(PyValueError::new_err(format!("no handler found for {ext}")));
            };
            let fast_int = value.is_exact_instance_of::<PyInt>()
                && self
                    .int_encoder
                    .as_ref()
                    .is_some_and(|f| handler.is(f.bind(py)));
            match fast_int.then(|| value.extract::<i64>().ok()).flatten() {
                Some(n) => Payload::Owned(n.to_string().into_bytes()),
                None => {
                    let out = handler.call1((value,))?;
                    bytes_like(&out)?.ok_or_else(|| {
                        PyValueError::new_err(format!(
                            "{field} doesn't map to a bytes after encoding ({})",
                            type_name(&out)
                        ))
                    })?
                }
            }
        };
        if !gz {
            return Ok(payload);
        }
        // Byte for byte what upstream writes (and encode_based_on_extension1):
        // Python's gzip.compress at its default level with mtime=0. zlib
        // releases the GIL itself while compressing large buffers.
        let packed = py.import("gzip")?.getattr("compress")?.call(
            (PyBytes::new(py, payload.bytes()),),
            Some(&[("mtime", 0)].into_py_dict(py)?),
        )?;
        Ok(Payload::Owned(
            packed.cast::<PyBytes>()?.as_bytes().to_vec(),
        ))
    }

    /// Checks an already-encoded value (custom encoders and `encoder=False`).
    fn check_encoded<'py>(field: &str, value: &Bound<'py, PyAny>) -> PyResult<Payload<'py>> {
        bytes_like(value)?.ok_or_else(|| {
            PyValueError::new_err(format!(
                "{field} doesn't map to a bytes after encoding ({})",
                type_name(value)
            ))
        })
    }
}

fn write_once(write: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>, len: usize) -> PyResult<usize> {
    let n = write.call1((data,))?;
    if n.is_none() {
        return Err(PyOSError::new_err(
            "the output stream accepted no data (non-blocking stream?)",
        ));
    }
    let n: usize = n
        .extract()
        .map_err(|_| PyTypeError::new_err("stream.write() must return an int"))?;
    if n == 0 && len > 0 {
        return Err(PyOSError::new_err("the output stream accepted no data"));
    }
    Ok(n.min(len))
}

#[pymethods]
impl PyTarEncoder {
    /// `stream`: binary file-like object with `write`.
    /// `mtime=None` stamps each sample with the current time.
    /// `handlers`: extension → encoder table; `None` means values are already encoded.
    /// `int_encoder`: the table's int encoder, which may be skipped for plain ints.
    /// `zero_copy`: the stream never keeps what `write` is given (builtin files),
    /// so buffered data may be lent to it instead of copied.
    #[new]
    #[pyo3(signature = (stream, *, user="bigdata", group="bigdata", mode=0o444, mtime=None, keep_meta=false, handlers=None, int_encoder=None, buffer_size=1<<20, zero_copy=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        stream: &Bound<'_, PyAny>,
        user: &str,
        group: &str,
        mode: u32,
        mtime: Option<u64>,
        keep_meta: bool,
        handlers: Option<Py<PyDict>>,
        int_encoder: Option<Py<PyAny>>,
        buffer_size: usize,
        zero_copy: bool,
    ) -> PyResult<Self> {
        let write = stream.getattr("write").map_err(|_| {
            PyTypeError::new_err("TarWriter needs a binary stream with a write() method")
        })?;
        let meta = MemberMeta {
            mode,
            uname: user.to_string(),
            gname: group.to_string(),
            mtime: mtime.unwrap_or_else(Self::now),
            ..MemberMeta::default()
        };
        let template =
            HeaderTemplate::new(&meta).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyTarEncoder {
            write: write.unbind(),
            template,
            fixed_mtime: mtime.is_some(),
            keep_meta,
            handlers,
            int_encoder,
            ext_names: HashMap::new(),
            buf: Vec::with_capacity(buffer_size.min(64 << 20) + 4 * BLOCK),
            zero_copy,
            flush_at: buffer_size.max(BLOCK),
            written: 0,
            finished: false,
        })
    }

    /// Encodes and writes one sample; returns the number of payload bytes written.
    fn write(&mut self, py: Python<'_>, sample: &Bound<'_, PyAny>) -> PyResult<u64> {
        if self.finished {
            return Err(PyValueError::new_err("write to a closed TarWriter"));
        }
        let owned;
        let dict = match sample.cast::<PyDict>() {
            Ok(d) => d,
            Err(_) => {
                if !sample.hasattr("items")? {
                    return Err(PyTypeError::new_err(format!(
                        "a sample must be a dict, not {}",
                        type_name(sample)
                    )));
                }
                let d = PyDict::new(py);
                d.call_method1("update", (sample,))?;
                owned = d;
                &owned
            }
        };
        if !self.fixed_mtime {
            self.template
                .set_mtime(Self::now())
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
        }
        let encode = self.handlers.is_some();
        let mut key: Option<Vec<u8>> = None;
        let mut fields: Vec<(Vec<u8>, Payload<'_>)> = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let k = k.cast_into::<PyString>().map_err(|k| {
                PyTypeError::new_err(format!(
                    "sample keys must be str, got {}",
                    type_name(k.into_inner().as_any())
                ))
            })?;
            let kb = str_bytes(&k)?;
            if kb.first() == Some(&b'_') {
                // Metadata: the default encoder insists on str values.
                let text = v.cast::<PyString>();
                if encode && text.is_err() {
                    return Err(PyValueError::new_err(
                        "the values of metadata must be of string type",
                    ));
                }
                if &*kb == b"__key__" {
                    let Ok(text) = text else {
                        return Err(PyTypeError::new_err(format!(
                            "__key__ must be a str, not {}",
                            type_name(&v)
                        )));
                    };
                    key = Some(str_bytes(text)?.into_owned());
                    continue;
                }
                if !self.keep_meta {
                    continue;
                }
                let payload = match text {
                    Ok(t) => Payload::Owned(str_bytes(t)?.into_owned()),
                    Err(_) => bytes_like(&v)?.ok_or_else(|| {
                        PyValueError::new_err(format!(
                            "converter didn't yield bytes: {k}, {}",
                            type_name(&v)
                        ))
                    })?,
                };
                fields.push((kb.into_owned(), payload));
                continue;
            }
            let payload = if encode {
                self.encode_field(py, k.to_str().unwrap_or(&String::from_utf8_lossy(&kb)), &v)?
            } else {
                Self::check_encoded(&String::from_utf8_lossy(&kb), &v)?
            };
            fields.push((kb.into_owned(), payload));
        }
        let Some(key) = key else {
            return Err(PyValueError::new_err("object must contain a __key__"));
        };
        // Sorting UTF-8 bytes gives the same order as sorting the str keys.
        fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut names = Vec::with_capacity(fields.len());
        for (field, _) in &fields {
            let mut name = Vec::with_capacity(key.len() + 1 + field.len());
            name.extend_from_slice(&key);
            name.push(b'.');
            name.extend_from_slice(field);
            check_name(&name).map_err(|e| PyValueError::new_err(e.to_string()))?;
            names.push(name);
        }
        // Everything is encoded and valid: nothing below can leave half a sample behind
        // except a failing stream.
        let mut total = 0u64;
        for (name, (_, payload)) in names.iter().zip(&fields) {
            let data = payload.bytes();
            total += data.len() as u64;
            let start = self.buf.len();
            self.template
                .append_header(&mut self.buf, name, data.len() as u64);
            let header_len = self.buf.len() - start;
            match payload {
                Payload::Shared(obj) if data.len() >= DIRECT_WRITE => {
                    self.flush_buf(py)?;
                    self.write_all(py, obj)?;
                }
                _ if data.len() >= DETACH_AT => {
                    let buf = &mut self.buf;
                    crate::errors::release(py, || {
                        buf.extend_from_slice(data);
                        Ok(())
                    })
                    .map_err(|e| crate::errors::internal("TarWriter", e))?;
                }
                _ => self.buf.extend_from_slice(data),
            }
            append_padding(&mut self.buf, data.len() as u64);
            self.written += (header_len + data.len()) as u64
                + (data.len().next_multiple_of(BLOCK) - data.len()) as u64;
        }
        if self.buf.len() >= self.flush_at {
            self.flush_buf(py)?;
        }
        Ok(total)
    }

    /// Writes out buffered members.
    fn flush(&mut self, py: Python<'_>) -> PyResult<()> {
        self.flush_buf(py)
    }

    /// Writes buffered members and the end-of-archive marker. Later writes fail.
    fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let end = end_of_archive_len(self.written) as usize;
        self.buf.resize(self.buf.len() + end, 0);
        self.written += end as u64;
        self.flush_buf(py)
    }

    /// Tar bytes produced so far (written or buffered).
    #[getter]
    fn bytes_written(&self) -> u64 {
        self.written
    }

    /// True after `finish()`.
    #[getter]
    fn finished(&self) -> bool {
        self.finished
    }
}
