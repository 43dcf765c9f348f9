//! Text for people: the one-line form every error takes.

/// wgpu's error texts span several lines; our errors are one.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
