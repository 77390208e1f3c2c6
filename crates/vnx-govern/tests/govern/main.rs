//! Integration tests of vnx-govern.
