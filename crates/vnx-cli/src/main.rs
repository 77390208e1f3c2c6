//! The `vnx` binary.
fn main() {}
