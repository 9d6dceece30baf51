//! Phoenix frames as a client may send them: V1 and V2 JSON text, V2 binary.
#![no_main]

use fawkes_channels::serializer::Serializer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Serializer::V1.decode_text(text);
        let _ = Serializer::V2.decode_text(text);
    }
    let _ = Serializer::V2.decode_binary(data);
});
