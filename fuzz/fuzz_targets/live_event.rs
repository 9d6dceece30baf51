//! LiveView `event` payloads: JSON with url-encoded form values and hook values.
#![no_main]

use fawkes_live::{Event, Params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data)
        && let Some(event) = Event::from_payload(&payload)
    {
        let _ = event.touched("name");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let params = Params::from_urlencoded(text);
        let _ = params.get("user[name]");
    }
});
