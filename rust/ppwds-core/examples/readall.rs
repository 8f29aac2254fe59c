//! Times reading a shard with the core alone: `cargo run --release --example readall -- FILE`.
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: readall FILE");
    for _ in 0..3 {
        let t = Instant::now();
        let (stream, _) = ppwds_core::source::open_path(path.as_ref()).unwrap();
        let samples = ppwds_core::samples::read_all(stream).unwrap();
        let dt = t.elapsed().as_secs_f64();
        println!(
            "{} samples in {:.3}s: {:.0} samples/s",
            samples.len(),
            dt,
            samples.len() as f64 / dt
        );
    }
}
