//! Checkpoints: `cargo +nightly fuzz run checkpoint` (seed: tests/corpus/checkpoint.safetensors).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gpu_fmnist::train::Model::from_bytes(data);
});
