//! Images for `predict`: `cargo +nightly fuzz run image` (seed: tests/corpus/image.png).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gpu_fmnist::data::image::decode_image(data, "fuzz");
});
