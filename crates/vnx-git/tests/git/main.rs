//! Integration tests against real git repositories in temp dirs.
fn main() {}
