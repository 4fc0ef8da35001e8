//! Start-up of the WASI jail per file, split into its stages, with a warm module cache:
//! loading the compiled guest (`Module::deserialize_file`), a fresh WASI context + store +
//! instance, and the guest's run on a tiny checkpoint. Median of 200.
//!
//! `cargo bench --bench wasi_startup`

use modelguard::convert::ConvertOptions;
use modelguard::wasi::{GuestDir, Runner};
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let input_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/sd_sequential.pt");
    let input = File::open(&input_path).expect("fixture");
    let len = input.metadata().unwrap().len();
    let opts = ConvertOptions::default();
    let tmp = tempfile::tempdir().unwrap();
    Runner::new().expect("the WASI guest is built (guest/build.sh) and the cache warms");
    let (mut load, mut prepare, mut run, mut total) = (vec![], vec![], vec![], vec![]);
    for _ in 0..200 {
        let t0 = Instant::now();
        let runner = Runner::new().unwrap();
        let t1 = Instant::now();
        let dir = GuestDir::new(&input, tmp.path()).unwrap();
        let out = tempfile::tempfile_in(tmp.path()).unwrap();
        let prepared = runner
            .prepare(dir.path(), len, out, &opts, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{:?}", e.error));
        let t2 = Instant::now();
        let outcome = prepared.run();
        let t3 = Instant::now();
        assert!(
            outcome.error.is_none() && outcome.written,
            "{:?}",
            outcome.error
        );
        load.push(t1 - t0);
        prepare.push(t2 - t1);
        run.push(t3 - t2);
        total.push(t3 - t0);
    }
    println!("WASI start-up per file, warm module cache, {len}-byte checkpoint, median of 200:");
    println!(
        "  load the compiled guest (engine + deserialize_file): {:.2} ms",
        median(load)
    );
    println!(
        "  guest folder + WASI context + store + instance:      {:.2} ms",
        median(prepare)
    );
    println!(
        "  guest run (parse + write):                           {:.2} ms",
        median(run)
    );
    println!(
        "  total:                                               {:.2} ms",
        median(total)
    );
}
