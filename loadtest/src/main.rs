//! Load tester (issue 4).
fn main() {}
