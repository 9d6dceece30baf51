//! Recurring jobs: a cron expression enqueues a job at each of its slots.
//!
//! Every node runs the scheduler. Each slot is enqueued as a unique job keyed by the entry's
//! name and the slot's instant, so however many nodes reach a slot, one job is enqueued.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::enqueue::{DEFAULT_QUEUE, NewJob, enqueue};

/// How long a slot's key is held: far longer than any two nodes' clocks disagree.
const SLOT_KEY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// One recurring job (`[[jobs.cron]]` in the configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronJob {
    /// Unique among the entries; part of each slot's unique key.
    pub name: String,
    /// A cron expression in UTC: `min hour day month weekday`, or with seconds first.
    pub schedule: String,
    pub kind: String,
    #[serde(default = "default_queue")]
    pub queue: String,
    /// The job's arguments; `{}` unless set.
    #[serde(default = "empty_object")]
    pub args: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

fn default_queue() -> String {
    DEFAULT_QUEUE.to_owned()
}

impl CronJob {
    /// The unique key of the slot at `slot` (Unix milliseconds).
    pub fn slot_key(&self, slot: i64) -> String {
        format!("cron:{}:{slot}", self.name)
    }
}

/// Checks cron entries (as configuration loading does): each expression parses, each name is
/// present and unique, each queue and kind is valid.
pub fn check(entries: &[CronJob]) -> Result<(), Error> {
    parse(entries.to_vec()).map(|_| ())
}

fn parse(entries: Vec<CronJob>) -> Result<Vec<(CronJob, Cron)>, Error> {
    let mut parsed: Vec<(CronJob, Cron)> = Vec::new();
    for entry in entries {
        let invalid = |message: String| Error::Cron {
            name: entry.name.clone(),
            message,
        };
        if entry.name.is_empty() || parsed.iter().any(|(e, _)| e.name == entry.name) {
            return Err(invalid("names must be present and unique".into()));
        }
        let cron = Cron::from_str(&entry.schedule).map_err(|e| invalid(e.to_string()))?;
        NewJob::new(entry.kind.clone(), entry.args.clone())
            .queue(entry.queue.clone())
            .unique(entry.slot_key(0), SLOT_KEY_WINDOW)
            .check()
            .map_err(|e| invalid(e.to_string()))?;
        parsed.push((entry, cron));
    }
    Ok(parsed)
}

/// Enqueues each configured entry at each of its slots. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Scheduler {
    db: DatabaseConnection,
    entries: Vec<(CronJob, Cron)>,
}

impl Scheduler {
    /// Checks every entry's expression and that names are unique.
    pub fn new(db: DatabaseConnection, entries: Vec<CronJob>) -> Result<Scheduler, Error> {
        let entries = parse(entries)?;
        Ok(Scheduler { db, entries })
    }

    /// The first slot of `cron` strictly after `after`.
    fn next_slot(cron: &Cron, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        cron.find_next_occurrence(&after, false).ok()
    }

    /// Enqueues the slot of `entry` at `slot`; `Some(id)` if this call enqueued it.
    pub async fn enqueue_slot(
        &self,
        entry: &CronJob,
        slot: DateTime<Utc>,
    ) -> Result<Option<uuid::Uuid>, Error> {
        let at = slot.timestamp_millis();
        let job = NewJob::new(entry.kind.clone(), entry.args.clone())
            .queue(entry.queue.clone())
            .run_at(at)
            .max_attempts(crate::enqueue::DEFAULT_MAX_ATTEMPTS)
            .unique(entry.slot_key(at), SLOT_KEY_WINDOW);
        enqueue(&self.db, job).await
    }

    /// Runs until `shutdown`: sleeps to the next slot of any entry, then enqueues it.
    pub async fn run(self, shutdown: CancellationToken) {
        if self.entries.is_empty() {
            return;
        }
        let start = Utc::now();
        let mut next: Vec<Option<DateTime<Utc>>> = self
            .entries
            .iter()
            .map(|(_, cron)| Self::next_slot(cron, start))
            .collect();
        loop {
            let Some(soonest) = next.iter().flatten().min().copied() else {
                return;
            };
            let wait = (soonest - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let now = Utc::now();
            for ((entry, cron), slot) in self.entries.iter().zip(next.iter_mut()) {
                let Some(due) = *slot else { continue };
                if due > now {
                    continue;
                }
                match self.enqueue_slot(entry, due).await {
                    Ok(Some(id)) => {
                        tracing::info!(name = %entry.name, %id, slot = %due, "recurring job enqueued")
                    }
                    Ok(None) => {
                        tracing::debug!(name = %entry.name, slot = %due, "slot already enqueued by another node")
                    }
                    Err(e) => {
                        tracing::warn!(name = %entry.name, error = %e, "cannot enqueue a recurring job")
                    }
                }
                *slot = Self::next_slot(cron, due.max(now - chrono::Duration::milliseconds(1)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_slots_follow_the_expression() {
        let cron = Cron::from_str("*/15 * * * *").expect("parses");
        let at = DateTime::parse_from_rfc3339("2026-01-01T10:07:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let next = Scheduler::next_slot(&cron, at).expect("a next slot");
        assert_eq!(next.to_rfc3339(), "2026-01-01T10:15:00+00:00");
        let seconds = Cron::from_str("*/2 * * * * *").expect("seconds parse");
        let next = Scheduler::next_slot(&seconds, at).expect("a next slot");
        assert_eq!(next.to_rfc3339(), "2026-01-01T10:07:02+00:00");
    }
}
