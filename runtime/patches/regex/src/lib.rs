//! See Cargo.toml: regex-lite under the `regex` name.
pub use regex_lite::*;
