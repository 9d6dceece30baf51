//! The configuration as an operator writes it: a `fawkes.toml` file, or `FAWKES_*` variables.
//! Whatever the bytes, loading answers a configuration or an error, never a panic.
//!
//! The first byte picks the source: even, the rest is the file; odd, the rest is lines of
//! `NAME=value` taken as the environment.
#![no_main]

use std::collections::HashMap;
use std::sync::LazyLock;

use fawkes::config::{Overrides, Sources};
use libfuzzer_sys::fuzz_target;

static DIR: LazyLock<tempfile::TempDir> =
    LazyLock::new(|| tempfile::tempdir().expect("a temporary folder for the fuzzed file"));

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if selector % 2 == 0 {
        let path = DIR.path().join("fawkes.toml");
        if std::fs::write(&path, text).is_err() {
            return;
        }
        let _ = fawkes::Config::load(Sources {
            file: Some(&path),
            env: HashMap::new(),
            overrides: Overrides::default(),
        });
    } else {
        let env = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let _ = fawkes::Config::load(Sources {
            file: None,
            env,
            overrides: Overrides::default(),
        });
    }
});
