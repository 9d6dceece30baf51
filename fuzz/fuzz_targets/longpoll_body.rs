//! LongPoll POST bodies: one frame, or ndjson of text and base64 binary frames.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fawkes_channels::longpoll::decode_body(true, data);
    let _ = fawkes_channels::longpoll::decode_body(false, data);
});
