//! Shared set-up for the fuzz targets: engine limits small enough that libFuzzer's memory and
//! time limits only trip on a real bug, never on a legitimately large allocation.

use modelguard::formats::{Analysis, Options};

pub fn options() -> Options {
    let mut limits = modelguard::Limits::default();
    for setting in [
        "max_graph_bytes=67108864",
        "max_inflated_member=67108864",
        "max_output_bytes=67108864",
    ] {
        // Names that do not exist fail loudly in the first run rather than silently.
        limits.set(setting).expect("a known limit");
    }
    Options {
        limits,
        skip_unsupported: true,
        // a file as a caller hands it over: not nested in another
        nesting: 0,
    }
}

pub fn analysis() -> Analysis {
    Analysis::default()
}
