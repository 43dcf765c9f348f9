//! The loader on the real sample and on deliberately broken files, through the library and
//! through the command line (one-line error, non-zero exit, no panic).

use std::io::Write;
use std::path::Path;
use std::process::Command;

use gpu_fmnist::data::{idx::encode_idx, FashionMnist, PIXELS};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample");

#[test]
fn sample_splits_like_the_report_rule_for_small_sets() {
    let ds = FashionMnist::load(Some(Path::new(SAMPLE))).unwrap();
    assert_eq!((ds.train.len(), ds.val.len(), ds.test.len()), (1800, 200, 1000));
    assert_eq!(ds.train.images.len(), 1800 * PIXELS);
    assert!(ds.validation_rule.contains("10%"));
    // The first 8 test labels are the ones Keras's golden model file was computed on.
    assert_eq!(&ds.test.labels[..8], &[9, 2, 1, 1, 6, 1, 4, 6]);
    let (mean, std) = ds.train.pixel_mean_std();
    assert!((mean - 0.284).abs() < 0.01 && (std - 0.353).abs() < 0.01, "{mean} {std}");
    assert_eq!(ds.test.class_counts().iter().sum::<usize>(), 1000);
}

#[test]
fn full_set_splits_55000_5000_10000_when_installed() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.exists() {
        // On CI (./setup.sh installs it) a missing data set is a failure, not a skip.
        assert!(std::env::var_os("CI").is_none(), "dataset-fashion-mnist is not installed: run ./setup.sh");
        eprintln!("skipped: dataset-fashion-mnist is not installed");
        return;
    }
    let ds = FashionMnist::load(Some(dir)).unwrap();
    assert_eq!((ds.train.len(), ds.val.len(), ds.test.len()), (55_000, 5_000, 10_000));
    assert_eq!(ds.train.class_counts()[0], 5543);
}

/// A data directory whose files are the sample's, with one replaced.
fn broken_dir(replace: &str, bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        if name == replace {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        } else {
            let from = Path::new(SAMPLE).join(format!("{name}.gz"));
            std::fs::copy(from, dir.path().join(format!("{name}.gz"))).unwrap();
        }
    }
    dir
}

fn labels(values: &[u8]) -> Vec<u8> {
    encode_idx(&[values.len()], values)
}

fn images(n: usize) -> Vec<u8> {
    encode_idx(&[n, 28, 28], &vec![7u8; n * PIXELS])
}

/// Runs `gpu-fmnist data --data-dir DIR` and returns (exit code, stderr).
fn cli_data(dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gpu-fmnist"))
        .args(["data", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Each broken file fails in the library with `expect` in its message, and on the command line
/// with exactly one line naming the file, exit code 1.
fn assert_rejected(replace: &str, bytes: &[u8], expect: &str) {
    let dir = broken_dir(replace, bytes);
    let err = FashionMnist::load(Some(dir.path())).unwrap_err().to_string();
    assert!(err.contains(expect), "{replace}: {err:?} lacks {expect:?}");
    let (code, stderr) = cli_data(dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.starts_with("error: ") && stderr.contains(replace), "{stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr:?}");
}

#[test]
fn truncated_images() {
    let mut b = images(1000);
    b.truncate(b.len() - 100);
    assert_rejected("t10k-images-idx3-ubyte", &b, "truncated");
}

#[test]
fn truncated_header() {
    assert_rejected("t10k-labels-idx1-ubyte", &[0, 0, 8], "truncated");
}

#[test]
fn wrong_magic() {
    let mut b = labels(&[1; 1000]);
    b[0] = 0x50;
    assert_rejected("t10k-labels-idx1-ubyte", &b, "magic");
}

#[test]
fn wrong_dimensions() {
    let b = encode_idx(&[10, 32, 32], &vec![0; 10 * 32 * 32]);
    assert_rejected("t10k-images-idx3-ubyte", &b, "28×28");
}

#[test]
fn wrong_count_in_header() {
    // The header promises more labels than the file holds.
    let mut b = labels(&[1; 1000]);
    b[7] = 0xff;
    assert_rejected("t10k-labels-idx1-ubyte", &b, "truncated");
}

#[test]
fn label_out_of_range() {
    let mut values = vec![3u8; 1000];
    values[417] = 10;
    assert_rejected("t10k-labels-idx1-ubyte", &labels(&values), "label 10 at index 417");
}

#[test]
fn mismatched_counts() {
    assert_rejected("t10k-labels-idx1-ubyte", &labels(&[1; 999]), "999 labels for 1000 images");
}

#[test]
fn corrupt_gzip() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&labels(&[1; 1000])).unwrap();
    let mut b = gz.finish().unwrap();
    let n = b.len();
    b[n / 2] ^= 0xff;
    b.truncate(n - 6);
    assert_rejected("t10k-labels-idx1-ubyte", &b, "t10k-labels-idx1-ubyte");
}

#[test]
fn missing_file_says_how_to_install() {
    let dir = broken_dir("t10k-labels-idx1-ubyte", b"");
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    let err = FashionMnist::load(Some(dir.path())).unwrap_err().to_string();
    assert!(
        err.contains("missing t10k-labels-idx1-ubyte")
            && err.contains("apt-get install dataset-fashion-mnist"),
        "{err}"
    );
    let (code, stderr) = cli_data(dir.path());
    assert_eq!((code, stderr.lines().count()), (1, 1), "{stderr}");
}

#[test]
fn uncompressed_files_load_too() {
    let dir = broken_dir("t10k-labels-idx1-ubyte", &labels(&[4; 1000]));
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), images(1000)).unwrap();
    std::fs::remove_file(dir.path().join("t10k-images-idx3-ubyte.gz")).unwrap();
    let ds = FashionMnist::load(Some(dir.path())).unwrap();
    assert_eq!(ds.test.class_counts()[4], 1000);
    assert_eq!(ds.test.image(999)[0], 7);
}
