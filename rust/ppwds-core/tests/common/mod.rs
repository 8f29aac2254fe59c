//! Tar builders shared by the integration tests.

use ppwds_core::encoder::{EncoderOptions, ShardEncoder};

/// A tar of regular files (mtime 0) written by the crate's own encoder.
pub fn build(members: &[(&[u8], &[u8])]) -> Vec<u8> {
    let opts = EncoderOptions {
        mtime: Some(0),
        ..EncoderOptions::default()
    };
    let mut enc = ShardEncoder::new(Vec::new(), opts).unwrap();
    for (n, d) in members {
        enc.write_member(n, d).unwrap();
    }
    enc.into_inner().unwrap()
}

/// Recomputes a header block's checksum after a test edited it.
#[allow(dead_code)] // not every test file edits headers
pub fn fix_checksum(block: &mut [u8]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
}
