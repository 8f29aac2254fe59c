//! `TarEncoder`: Python sample dicts → the core's [`ShardEncoder`].
//!
//! The archive layout (metadata, member names, order, `.gz` fields, padding, end
//! marker) is the core's. This file only turns Python values into bytes — bytes,
//! str and ints for `cls`-like extensions here, other values through the Python
//! handler table — and adapts the Python stream to `std::io::Write`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;

use ppwds_core::encoder::{field_kind, gzip_base, EncoderOptions, FieldKind, ShardEncoder};
use ppwds_core::{Error, ErrorKind};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyByteArray, PyBytes, PyDict, PyInt, PyMemoryView, PyString};

use crate::errors::pyerr_to_io;

/// Samples with a payload at least this large are encoded without the GIL (the copies).
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

/// The Python stream as `std::io::Write`: each call is one `stream.write`.
struct PyStream {
    write: Py<PyAny>,
    /// The stream never keeps what `write` is given, so it may get a view of our buffer.
    zero_copy: bool,
}

impl io::Write for PyStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Python::attach(|py| {
            let write = self.write.bind(py);
            if !self.zero_copy {
                return write_once(write, PyBytes::new(py, buf).as_any(), buf.len());
            }
            // SAFETY: `buf` stays alive and unchanged until the view is released below.
            let view = unsafe {
                let ptr = ffi::PyMemoryView_FromMemory(
                    buf.as_ptr() as *mut std::os::raw::c_char,
                    buf.len() as ffi::Py_ssize_t,
                    ffi::PyBUF_READ,
                );
                Bound::from_owned_ptr_or_err(py, ptr)?
            };
            let n = write_once(write, &view, buf.len());
            view.call_method0("release")?;
            n
        })
        .map_err(pyerr_to_io)
    }

    /// Nothing to do: `TarWriter.close` flushes the stream itself.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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

/// An encoder error as Python sees it: the stream's own exception, or `ValueError`.
fn encoder_err(err: Error) -> PyErr {
    // A failing Python stream's own exception comes back unchanged.
    let err = match crate::errors::take_pyerr(err) {
        Ok(pyerr) => return pyerr,
        Err(err) => err,
    };
    match &err.kind {
        ErrorKind::Io(e) => crate::errors::os_error(e, e.to_string(), ""),
        ErrorKind::Invalid(msg) | ErrorKind::InvalidMember(msg) => {
            PyValueError::new_err(msg.clone())
        }
        ErrorKind::Panicked(_) => crate::errors::internal("TarWriter", err),
        _ => PyValueError::new_err(err.to_string()),
    }
}

/// Encodes samples as tar members and writes them to a Python binary stream.
#[pyclass(module = "ppwebdataset._core", name = "TarEncoder")]
pub struct PyTarEncoder {
    enc: ShardEncoder<PyStream>,
    handlers: Option<Py<PyDict>>,
    int_encoder: Option<Py<PyAny>>,
    ext_names: HashMap<String, Py<PyString>>,
}

impl PyTarEncoder {
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

    /// Converts one data field with the handler table (a `.gz` field by its base name;
    /// the encoder compresses it).
    fn encode_field<'py>(
        &mut self,
        py: Python<'py>,
        field: &str,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Payload<'py>> {
        if let Some(p) = bytes_like(value)? {
            return Ok(p);
        }
        if let Ok(s) = value.cast::<PyString>() {
            return Ok(Payload::Owned(str_bytes(s)?.into_owned()));
        }
        let base = match gzip_base(field.as_bytes()) {
            Some(b) => &field[..b.len()],
            None => field,
        };
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
        if let Some(n) = fast_int.then(|| value.extract::<i64>().ok()).flatten() {
            return Ok(Payload::Owned(n.to_string().into_bytes()));
        }
        let out = handler.call1((value,))?;
        bytes_like(&out)?.ok_or_else(|| {
            PyValueError::new_err(format!(
                "{field} doesn't map to a bytes after encoding ({})",
                type_name(&out)
            ))
        })
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

/// Python's `gzip.compress(data, mtime=0)`, byte for byte what upstream writes (and
/// `encode_based_on_extension1`); zlib releases the GIL itself on large buffers.
fn python_gzip(py: Python<'_>) -> PyResult<ppwds_core::encoder::GzipFn> {
    let compress = py.import("gzip")?.getattr("compress")?.unbind();
    Ok(Box::new(move |data: &[u8]| {
        Python::attach(|py| -> PyResult<Vec<u8>> {
            let packed = compress.bind(py).call(
                (PyBytes::new(py, data),),
                Some(&[("mtime", 0)].into_py_dict(py)?),
            )?;
            Ok(packed.cast::<PyBytes>()?.as_bytes().to_vec())
        })
        .map_err(pyerr_to_io)
    }))
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
        py: Python<'_>,
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
        let options = EncoderOptions {
            mode,
            uname: user.to_string(),
            gname: group.to_string(),
            mtime,
            keep_meta,
            // Values the handler table encodes get their `.gz` applied here too.
            gzip_fields: handlers.is_some(),
            buffer_size,
        };
        let out = PyStream {
            write: write.unbind(),
            zero_copy,
        };
        let mut enc = ShardEncoder::new(out, options).map_err(encoder_err)?;
        if enc.gzips_fields() {
            enc.set_gzip(python_gzip(py)?);
        }
        Ok(PyTarEncoder {
            enc,
            handlers,
            int_encoder,
            ext_names: HashMap::new(),
        })
    }

    /// Encodes and writes one sample; returns the number of payload bytes written.
    fn write(&mut self, py: Python<'_>, sample: &Bound<'_, PyAny>) -> PyResult<u64> {
        if self.enc.is_finished() {
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
            let kind = field_kind(&kb);
            if kind != FieldKind::Data {
                // Metadata: the default encoder insists on str values.
                let text = v.cast::<PyString>();
                if encode && text.is_err() {
                    return Err(PyValueError::new_err(
                        "the values of metadata must be of string type",
                    ));
                }
                if kind == FieldKind::Key {
                    let Ok(text) = text else {
                        return Err(PyTypeError::new_err(format!(
                            "__key__ must be a str, not {}",
                            type_name(&v)
                        )));
                    };
                    key = Some(str_bytes(text)?.into_owned());
                    continue;
                }
                if !self.enc.writes(kind) {
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
        let view: Vec<(&[u8], &[u8])> = fields
            .iter()
            .map(|(name, payload)| (&name[..], payload.bytes()))
            .collect();
        let enc = &mut self.enc;
        let written = if view.iter().any(|(_, data)| data.len() >= DETACH_AT) {
            crate::errors::release(py, || enc.write_sample(&key, &view))
        } else {
            crate::errors::catch(|| enc.write_sample(&key, &view)).and_then(|r| r)
        };
        written.map_err(encoder_err)
    }

    /// Writes out buffered members.
    fn flush(&mut self) -> PyResult<()> {
        self.enc.flush().map_err(encoder_err)
    }

    /// Writes buffered members and the end-of-archive marker. Later writes fail.
    fn finish(&mut self) -> PyResult<()> {
        self.enc.finish().map_err(encoder_err)
    }

    /// Tar bytes produced so far (written or buffered).
    #[getter]
    fn bytes_written(&self) -> u64 {
        self.enc.bytes_written()
    }

    /// True after `finish()`.
    #[getter]
    fn finished(&self) -> bool {
        self.enc.is_finished()
    }
}
