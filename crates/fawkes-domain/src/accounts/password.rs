use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

use crate::DomainError;

/// Argon2id hashing, run on the blocking pool so it never stalls the async workers.
#[derive(Clone, Default)]
pub struct PasswordHasher {
    /// A hash of a random password, verified against when a login names no account, so that
    /// "no such user" takes as long as "wrong password".
    decoy: Arc<OnceLock<String>>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHasher(argon2id)")
    }
}

impl PasswordHasher {
    pub async fn hash(&self, password: String) -> Result<String, DomainError> {
        tokio::task::spawn_blocking(move || hash_now(&password))
            .await
            .map_err(|e| DomainError::Internal(format!("hashing task failed: {e}")))?
    }

    /// True when `password` matches the PHC string `hash`.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, DomainError> {
        tokio::task::spawn_blocking(move || verify_now(&password, &hash))
            .await
            .map_err(|e| DomainError::Internal(format!("hashing task failed: {e}")))
    }

    /// Spends the time of one verification and returns false.
    pub async fn verify_decoy(&self, password: String) -> Result<bool, DomainError> {
        let decoy = self.decoy.clone();
        tokio::task::spawn_blocking(move || {
            let hash = decoy
                .get_or_init(|| hash_now(&uuid::Uuid::new_v4().to_string()).unwrap_or_default());
            let _ = verify_now(&password, hash);
            false
        })
        .await
        .map_err(|e| DomainError::Internal(format!("hashing task failed: {e}")))
    }
}

fn hash_now(password: &str) -> Result<String, DomainError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| DomainError::Internal(format!("password hashing failed: {e}")))
}

fn verify_now(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::default();
        let hash = hasher
            .hash("correct horse".into())
            .await
            .unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            hasher
                .verify("correct horse".into(), hash.clone())
                .await
                .unwrap_or(false)
        );
        assert!(
            !hasher
                .verify("wrong horse".into(), hash)
                .await
                .unwrap_or(true)
        );
        assert!(!hasher.verify_decoy("anything".into()).await.unwrap_or(true));
    }
}
