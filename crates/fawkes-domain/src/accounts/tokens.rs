use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::AuthSettings;
use crate::{AuthFailure, DomainError, Role};

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: Uuid,
    /// The role when the token was issued (informational: policies read the stored role).
    pub role: Role,
    /// The session id.
    pub sid: Uuid,
    /// The device (`user_devices.id`) of the session, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<Uuid>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: Uuid,
}

/// Issues and checks access tokens. The algorithm is pinned to HS256: a token whose header
/// names any other algorithm, `none` included, is refused before its signature is looked at.
#[derive(Clone)]
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl_secs: i64,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("issuer", &self.issuer)
            .field("access_ttl_secs", &self.access_ttl_secs)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    pub fn new(settings: &AuthSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(&settings.secret),
            decoding: DecodingKey::from_secret(&settings.secret),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl_secs: i64::try_from(settings.access_ttl.as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// Lifetime of an access token, in seconds (the `expires_in` of a login).
    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl_secs
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        role: Role,
        session_id: Uuid,
        device_id: Option<Uuid>,
    ) -> Result<String, DomainError> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id,
            role,
            sid: session_id,
            did: device_id,
            iat: now,
            nbf: now,
            exp: now.saturating_add(self.access_ttl_secs),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| DomainError::Internal(format!("token signing failed: {e}")))
    }

    /// Checks signature, algorithm, issuer, audience and validity window.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AuthFailure> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthFailure::TokenExpired,
                _ => AuthFailure::InvalidToken,
            })
    }
}

/// A new opaque refresh token: 32 random bytes, URL-safe.
pub(super) fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a refresh token or API key: its SHA-256, hex. A stolen database yields no
/// credentials.
pub(super) fn secret_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn signer(secret: &[u8]) -> TokenSigner {
        TokenSigner::new(&AuthSettings {
            secret: secret.to_vec(),
            issuer: "fawkes".into(),
            audience: "fawkes-api".into(),
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(3600),
            cache: crate::accounts::CacheSettings::default(),
        })
    }

    #[test]
    fn a_token_verifies_with_its_own_key_only() {
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let token = signer(b"k1")
            .issue(user, Role::User, session, None)
            .unwrap_or_default();
        let claims = signer(b"k1").verify(&token);
        assert_eq!(claims.map(|c| (c.sub, c.sid)), Ok((user, session)));
        assert_eq!(signer(b"k2").verify(&token), Err(AuthFailure::InvalidToken));
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(a, b);
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), secret_hash(&b));
    }
}
