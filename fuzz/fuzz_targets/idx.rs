//! IDX files: `cargo +nightly fuzz run idx fuzz/corpus/idx` (seed: tests/corpus/idx-*).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gpu_fmnist::data::idx::parse_idx(data);
});
