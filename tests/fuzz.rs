//! Property tests for everything that reads a file a user hands us — IDX files, model files,
//! checkpoints and images: on any bytes (random, or a seed from `tests/corpus/` with bytes
//! flipped, cut, or inserted) they return a value or an error, and never panic or abort. The
//! seeds are valid files, so the mutations explore the parsers' interesting paths; `fuzz/` has
//! the same four as cargo-fuzz targets for longer runs.

use proptest::prelude::*;

use gpu_fmnist::data::idx::parse_idx;
use gpu_fmnist::data::image::decode_image;
use gpu_fmnist::graph::ModelSpec;
use gpu_fmnist::train::Model;

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A seed with a few bytes flipped, a cut, and an insertion, chosen by proptest.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len().max(1);
    (
        prop::collection::vec((0..len, any::<u8>()), 0..8),
        0..=len,
        prop::collection::vec(any::<u8>(), 0..16),
        0..len,
    )
        .prop_map(move |(flips, cut, insert, at)| {
            let mut b = seed.clone();
            for (i, v) in flips {
                if i < b.len() {
                    b[i] ^= v;
                }
            }
            b.truncate(cut.max(1));
            let at = at.min(b.len());
            b.splice(at..at, insert);
            b
        })
}

fn inputs(seeds: &[&str]) -> impl Strategy<Value = Vec<u8>> {
    let mutations: Vec<_> = seeds.iter().map(|s| mutated(seed(s)).boxed()).collect();
    prop_oneof![prop::collection::vec(any::<u8>(), 0..512).boxed(), prop::strategy::Union::new(mutations)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn idx_files_never_panic(bytes in inputs(&["idx-images", "idx-labels"])) {
        let _ = parse_idx(&bytes);
    }

    #[test]
    fn model_files_never_panic(bytes in inputs(&["model.toml", "model.json"]), json in any::<bool>()) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = ModelSpec::parse(&text, json, "fuzz");
    }

    #[test]
    fn checkpoints_never_panic(bytes in inputs(&["checkpoint.safetensors"])) {
        let _ = Model::from_bytes(&bytes);
    }

    #[test]
    fn images_never_panic(bytes in inputs(&["image.png"])) {
        let _ = decode_image(&bytes, "fuzz");
    }
}

#[test]
fn the_seeds_are_valid() {
    assert_eq!(parse_idx(&seed("idx-images")).unwrap().dims, [2, 28, 28]);
    assert!(ModelSpec::parse(&String::from_utf8(seed("model.toml")).unwrap(), false, "x").is_ok());
    assert!(ModelSpec::parse(&String::from_utf8(seed("model.json")).unwrap(), true, "x").is_ok());
    assert_eq!(Model::from_bytes(&seed("checkpoint.safetensors")).unwrap().spec.name, "tiny");
    assert_eq!(decode_image(&seed("image.png"), "seed").unwrap().len(), 784);
}
