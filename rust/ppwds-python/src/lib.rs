//! The `ppwebdataset._core` native module: a thin layer over `ppwds-core`.

mod errors;
mod fnv;
mod image;
mod index;
mod lint;
mod reader;
mod scan;
mod shuffle;
mod writer;
mod xz;

use pyo3::prelude::*;

/// Splits a member name into `(key, extension)` like webdataset's `base_plus_ext`.
///
/// Returns `(None, None)` when the name has no key/extension split.
#[pyfunction]
fn split_key(name: &str) -> (Option<&str>, Option<&str>) {
    match ppwds_core::keys::split_key(name.as_bytes()) {
        Some(k) => (Some(&name[..k]), Some(&name[k + 1..])),
        None => (None, None),
    }
}

/// The wids split of a UTF-8 member name: the key's length in bytes (the extension, with
/// its dot, is the rest), or `None` when the name has no dot to split at.
#[pyfunction]
fn wids_split(name: &[u8]) -> Option<usize> {
    ppwds_core::keys::wids_split(name)
}

/// True for metadata members (`__name__` files and `__dir__/...` trees) that never join a sample.
#[pyfunction]
fn is_meta(name: &str) -> bool {
    ppwds_core::keys::is_meta(name.as_bytes())
}

/// Raises what a panic in the reader is turned into (for the tests: a `CorruptShardError`
/// naming the shard, not pyo3's `PanicException`).
#[pyfunction]
fn _panic_guard_selftest(py: Python<'_>, url: &str) -> PyResult<()> {
    errors::detach(py, &errors::ShardContext::new(url), || -> Result<(), _> {
        panic!("deliberate panic (self-test)")
    })
}

/// The `ppwebdataset.errors` classes the binding raises (a test checks that they exist).
#[pyfunction]
fn _error_classes() -> Vec<&'static str> {
    errors::CLASSES.to_vec()
}

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<reader::PyTarSampleReader>()?;
    m.add_class::<shuffle::PyShuffleBuffer>()?;
    m.add_class::<writer::PyTarEncoder>()?;
    m.add_class::<index::PyShardIndex>()?;
    m.add_function(wrap_pyfunction!(split_key, m)?)?;
    m.add_function(wrap_pyfunction!(is_meta, m)?)?;
    m.add_function(wrap_pyfunction!(wids_split, m)?)?;
    m.add_function(wrap_pyfunction!(scan::scan_shard, m)?)?;
    m.add_function(wrap_pyfunction!(lint::lint_shard, m)?)?;
    m.add_function(wrap_pyfunction!(image::decode_images, m)?)?;
    m.add_function(wrap_pyfunction!(image::start_decode_images, m)?)?;
    m.add_class::<image::PyImageJob>()?;
    m.add_function(wrap_pyfunction!(_panic_guard_selftest, m)?)?;
    m.add_function(wrap_pyfunction!(_error_classes, m)?)?;
    Ok(())
}
