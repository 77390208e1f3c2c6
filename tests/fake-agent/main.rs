//! Scripted fake agent (placeholder until the lanes work lands; prints nothing).
fn main() {}
