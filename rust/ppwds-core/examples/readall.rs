//! Times reading a shard with the core alone, through buffered reads and through mmap:
//! `cargo run --release --example readall -- FILE`.
use std::io::Cursor;
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: readall FILE");
    let size = std::fs::metadata(&path).unwrap().len() as f64;
    for round in 0..3 {
        let t = Instant::now();
        let (stream, _) = ppwds_core::source::open_path(path.as_ref()).unwrap();
        let n = ppwds_core::samples::read_all(stream).unwrap().len();
        let buffered = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a benchmark over a file nobody modifies while it runs.
        let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
        let m = ppwds_core::samples::read_all(Cursor::new(&map[..]))
            .unwrap()
            .len();
        let mapped = t.elapsed().as_secs_f64();
        assert_eq!(n, m);
        println!(
            "round {round}: {n} samples; buffered {:.0} samples/s {:.2} GB/s; mmap {:.0} samples/s {:.2} GB/s",
            n as f64 / buffered,
            size / buffered / 1e9,
            n as f64 / mapped,
            size / mapped / 1e9
        );
    }
}
