//! Signed tokens a browser hands back: view sessions, flash, CSRF.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let signer = fawkes_live::Signer::new(b"fuzz");
    let day = Duration::from_secs(86_400);
    let _ = signer.verify::<serde_json::Value>("lv-session", token, day);
    let _ = signer.verify::<String>("csrf", token, day);
});
