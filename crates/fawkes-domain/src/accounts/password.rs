use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

use crate::DomainError;

/// What a login naming no account is verified against, so that "no such user" costs what "wrong
/// password" costs. Its password was random and thrown away. Verification reads its cost from
/// the hash itself, so these parameters must be the ones [`PasswordHasher::hash`] writes; a test
/// below fails when an `argon2` upgrade changes them. A constant rather than a hash made at the
/// first unknown login, which would make that one login cost two hashings.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$NYYUnzlonDhO1J14Sv1/lw$m6XHEOyPUxVSMyO4UJaDrjFuknkUEn2dHO6lMoPDitc";

/// Argon2id hashing, run on the blocking pool so it never stalls the async workers.
#[derive(Clone, Default)]
pub struct PasswordHasher {
    /// Argon2 verifications run to the end, of real hashes and of the decoy alike: what a login
    /// attempt costs, counted so that tests can check that every attempt costs the same.
    verifications: Arc<AtomicU64>,
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
        let verifications = self.verifications.clone();
        tokio::task::spawn_blocking(move || verify_now(&password, &hash, &verifications))
            .await
            .map_err(|e| DomainError::Internal(format!("hashing task failed: {e}")))
    }

    /// Spends the time of one verification and returns false.
    pub async fn verify_decoy(&self, password: String) -> Result<bool, DomainError> {
        let verifications = self.verifications.clone();
        tokio::task::spawn_blocking(move || {
            let _ = verify_now(&password, DECOY_HASH, &verifications);
            false
        })
        .await
        .map_err(|e| DomainError::Internal(format!("hashing task failed: {e}")))
    }

    /// How many Argon2 verifications have run to the end.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

fn hash_now(password: &str) -> Result<String, DomainError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| DomainError::Internal(format!("password hashing failed: {e}")))
}

fn verify_now(password: &str, hash: &str, verifications: &AtomicU64) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        verifications.fetch_add(1, Ordering::Relaxed);
        matches
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

    #[tokio::test]
    async fn the_decoy_costs_what_a_real_hash_costs() {
        let hasher = PasswordHasher::default();
        let real = hasher
            .hash("some password".into())
            .await
            .unwrap_or_default();
        let real = PasswordHash::new(&real).expect("a PHC string");
        let decoy = PasswordHash::new(DECOY_HASH).expect("the decoy is a PHC string");
        assert_eq!(decoy.algorithm, real.algorithm);
        assert_eq!(decoy.version, real.version);
        assert_eq!(decoy.params, real.params, "m, t and p set the cost");
        assert_eq!(
            decoy.hash.map(|h| h.len()),
            real.hash.map(|h| h.len()),
            "so does the output length"
        );
    }

    #[tokio::test]
    async fn the_decoy_and_a_real_hash_each_run_one_verification() {
        let hasher = PasswordHasher::default();
        let hash = hasher.hash("right".into()).await.unwrap_or_default();
        assert_eq!(hasher.verifications(), 0, "hashing is not verifying");
        let _ = hasher.verify("wrong".into(), hash).await;
        assert_eq!(hasher.verifications(), 1);
        assert!(!hasher.verify_decoy("right".into()).await.unwrap_or(true));
        assert_eq!(hasher.verifications(), 2, "the decoy ran Argon2 to the end");
        let _ = hasher.verify("x".into(), "not a hash".into()).await;
        assert_eq!(
            hasher.verifications(),
            2,
            "nothing to run for a broken hash"
        );
    }
}
