//! Tar format: header decoding, streaming reading and writing.

pub mod header;
pub mod reader;
pub mod writer;

pub use header::BLOCK;
pub use reader::{Entry, ReadOptions, TarReader};
pub use writer::MemberMeta;
