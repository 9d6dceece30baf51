//! Access tokens as presented in `Authorization: Bearer` or a socket's `token` param.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use fawkes_domain::accounts::{AuthSettings, CacheSettings, TokenSigner};
use libfuzzer_sys::fuzz_target;

static SIGNER: LazyLock<TokenSigner> = LazyLock::new(|| {
    TokenSigner::new(&AuthSettings {
        secret: b"fuzz-secret".to_vec(),
        issuer: "fawkes".into(),
        audience: "fawkes".into(),
        access_ttl: Duration::from_secs(900),
        refresh_ttl: Duration::from_secs(86_400),
        cache: CacheSettings::default(),
    })
});

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = SIGNER.verify(token);
    }
});
