//! Model files, TOML and JSON: `cargo +nightly fuzz run model` (seed: tests/corpus/model.*).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = gpu_fmnist::graph::ModelSpec::parse(&text, false, "fuzz");
    let _ = gpu_fmnist::graph::ModelSpec::parse(&text, true, "fuzz");
});
