//! Pure-Rust core of ppwebdataset.
//!
//! Tar parsing and writing, sample grouping, whole-archive decompression and the helpers
//! the Python binding builds on. Nothing here depends on Python, so
//! `cargo test` runs without an interpreter.
#![deny(missing_docs)]

pub mod encoder;
pub mod error;
pub mod group;
#[cfg(feature = "image")]
pub mod image;
pub mod index;
pub mod keys;
pub mod samples;
pub mod shuffle;
pub mod source;
pub mod tar;

pub use error::{Error, ErrorKind, Result};
