//! What the application implements: a handler per job kind.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The job a handler is asked to perform.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub id: Uuid,
    pub queue: String,
    pub kind: String,
    pub args: serde_json::Value,
    /// This attempt, from 1.
    pub attempt: i32,
    pub max_attempts: i32,
    /// Cancelled when the worker shuts down: a long handler may stop early (its job is then
    /// given back and runs again later).
    pub shutdown: CancellationToken,
}

impl JobContext {
    /// The arguments as `T`; a mismatch is an error that discards the job (retrying cannot
    /// fix it).
    pub fn args<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_value(self.args.clone())
            .map_err(|e| JobError::discard(format!("invalid arguments: {e}")))
    }
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub message: String,
    /// False when retrying is pointless: the job is discarded at once.
    pub retry: bool,
}

impl JobError {
    /// A failure worth retrying (the default for `?`).
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry: true,
        }
    }

    /// A failure that retrying would not fix: the job is discarded now.
    pub fn discard(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry: false,
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Any error converts into a retryable failure, so handlers can use `?`.
impl<E: std::error::Error + Send + Sync + 'static> From<E> for JobError {
    fn from(error: E) -> Self {
        JobError::retry(error.to_string())
    }
}

/// Performs the jobs of one kind. A panic counts as a (retryable) error.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn perform(&self, job: &JobContext) -> Result<(), JobError>;
}

/// A handler made from an async closure taking the job.
struct FnHandler<F>(F);

#[async_trait::async_trait]
impl<F, Fut> JobHandler for FnHandler<F>
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    async fn perform(&self, job: &JobContext) -> Result<(), JobError> {
        (self.0)(job.clone()).await
    }
}

/// Handlers by kind. Cheap to clone and shared: kinds registered through any clone before the
/// worker starts are the ones it runs.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: Arc<RwLock<HashMap<String, Arc<dyn JobHandler>>>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds())
            .finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs jobs of `kind` with `handler`, replacing any handler it had.
    pub fn register(&self, kind: impl Into<String>, handler: impl JobHandler) {
        self.register_arc(kind, Arc::new(handler));
    }

    pub fn register_arc(&self, kind: impl Into<String>, handler: Arc<dyn JobHandler>) {
        if let Ok(mut handlers) = self.handlers.write() {
            handlers.insert(kind.into(), handler);
        }
    }

    /// Runs jobs of `kind` with an async closure.
    pub fn register_fn<F, Fut>(&self, kind: impl Into<String>, handler: F)
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        self.register(kind, FnHandler(handler));
    }

    pub fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.read().ok()?.get(kind).cloned()
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .handlers
            .read()
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default();
        kinds.sort();
        kinds
    }
}
