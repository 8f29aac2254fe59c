//! Replays the checked-in seed corpus (`fuzz/corpus/<target>/*`, which includes the
//! reproducers of issue 9) through the fuzz target bodies. Runs with plain `cargo test`,
//! no libFuzzer or nightly needed: `cargo test --manifest-path fuzz/Cargo.toml --no-default-features`.

use std::fs;
use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut n = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| f(&data));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
        n += 1;
    }
    assert!(n > 0, "{target}: empty corpus");
}

#[test]
fn tar_reader_corpus() {
    replay("tar_reader", ppwds_fuzz::tar_reader);
}

#[test]
fn group_corpus() {
    replay("group", ppwds_fuzz::group);
}

#[test]
fn index_build_corpus() {
    replay("index_build", ppwds_fuzz::index_build);
}

#[test]
fn sidecar_decode_corpus() {
    replay("sidecar_decode", ppwds_fuzz::sidecar_decode);
}
