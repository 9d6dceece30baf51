//! Signed tokens: the view session in `data-phx-session`, flash across redirects, and anything
//! else the server hands to a browser to get back unchanged. HMAC-SHA256 over the purpose and the
//! payload, so a token made for one purpose is refused for another.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

#[derive(Serialize, serde::Deserialize)]
struct Envelope<T> {
    /// Issued at, in seconds since the epoch.
    iat: u64,
    data: T,
}

impl Signer {
    /// A signer keyed from `secret`; the key is derived so the same secret used elsewhere (for
    /// JWTs) never signs these tokens directly.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| {
            // HMAC takes keys of any length; this branch cannot be reached.
            HmacSha256::new_from_slice(b"fawkes").unwrap_or_else(|_| unreachable!())
        });
        mac.update(b"fawkes-live token key");
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    pub fn sign<T: Serialize>(&self, purpose: &str, data: &T) -> String {
        let envelope = Envelope {
            iat: now_secs(),
            data,
        };
        let json = serde_json::to_vec(&envelope).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let signature = URL_SAFE_NO_PAD.encode(self.mac(purpose, &payload));
        format!("{payload}.{signature}")
    }

    /// The data of a token made for `purpose` no longer ago than `max_age`.
    pub fn verify<T: DeserializeOwned>(
        &self,
        purpose: &str,
        token: &str,
        max_age: Duration,
    ) -> Result<T, TokenError> {
        let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac_for(purpose);
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let envelope: Envelope<T> =
            serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if now_secs().saturating_sub(envelope.iat) > max_age.as_secs() {
            return Err(TokenError::Expired);
        }
        Ok(envelope.data)
    }

    fn mac_for(&self, purpose: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac
    }

    fn mac(&self, purpose: &str, payload: &str) -> Vec<u8> {
        let mut mac = self.mac_for(purpose);
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_token_verifies_for_its_purpose_only() {
        let signer = Signer::new(b"secret");
        let token = signer.sign("session", &"view-1");
        assert_eq!(
            signer.verify::<String>("session", &token, DAY).as_deref(),
            Ok("view-1")
        );
        assert_eq!(
            signer.verify::<String>("flash", &token, DAY),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            Signer::new(b"other").verify::<String>("session", &token, DAY),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_and_garbage_tokens_are_refused() {
        let signer = Signer::new(b"secret");
        let token = signer.sign("session", &"view-1");
        let forged = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"iat":1,"data":"x"}"#),
            token.split_once('.').unwrap().1
        );
        assert_eq!(
            signer.verify::<String>("session", &forged, DAY),
            Err(TokenError::BadSignature)
        );
        for garbage in ["", ".", "abc", "a.b.c", "%%%.%%%"] {
            assert!(
                signer.verify::<String>("session", garbage, DAY).is_err(),
                "{garbage}"
            );
        }
    }
}
