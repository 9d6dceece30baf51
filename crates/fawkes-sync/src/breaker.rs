//! A circuit breaker per sink, per node.
//!
//! Closed: deliveries go out; `failure_threshold` failures in a row open it. Open: nothing is
//! attempted (deliveries are recorded as missed) until the cool-down has passed. Half-open:
//! one delivery, the probe, is let through; its success closes the breaker, its failure opens
//! it for another cool-down. Every change of state is logged (there is no metrics registry).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The breaker's state, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// The probe is out; nothing else passes until it reports.
    HalfOpen,
}

/// What [`Breaker::allow`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it.
    Go,
    /// Send it as the half-open probe.
    Probe,
    /// Do not send; the breaker lets the next probe through at `until`.
    Refused { until: Instant },
}

/// What reporting an outcome did to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
    Closed,
}

#[derive(Debug)]
pub struct Breaker {
    sink: String,
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(sink: &str, threshold: u32, cooldown: Duration) -> Self {
        Self {
            sink: sink.to_owned(),
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen => BreakerState::HalfOpen,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a delivery may be attempted now. An open breaker past its cool-down lets exactly
    /// one caller through as the probe.
    pub fn allow(&self) -> Admission {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => Admission::Go,
            Inner::Open { until } if Instant::now() >= until => {
                *inner = Inner::HalfOpen;
                tracing::info!(sink = %self.sink, breaker = "half_open", "sink circuit breaker half-open: sending one probe");
                Admission::Probe
            }
            Inner::Open { until } => Admission::Refused { until },
            // The probe's outcome decides; others wait a little, not a whole cool-down.
            Inner::HalfOpen => Admission::Refused {
                until: Instant::now() + self.cooldown.min(Duration::from_secs(1)),
            },
        }
    }

    /// A delivery got an answer from the sink (2xx, or a 4xx that retrying would not fix).
    pub fn success(&self) -> Transition {
        let mut inner = self.lock();
        let was_closed = matches!(*inner, Inner::Closed { .. });
        *inner = Inner::Closed { failures: 0 };
        if was_closed {
            Transition::None
        } else {
            tracing::info!(sink = %self.sink, breaker = "closed", "sink circuit breaker closed: the sink answers again");
            Transition::Closed
        }
    }

    /// A delivery failed (no answer, a timeout, 408, 429 or 5xx).
    pub fn failure(&self) -> Transition {
        let mut inner = self.lock();
        let open = match *inner {
            Inner::Closed { failures } if failures + 1 >= self.threshold => true,
            Inner::Closed { failures } => {
                *inner = Inner::Closed {
                    failures: failures + 1,
                };
                false
            }
            Inner::HalfOpen => true,
            // A delivery that started before the breaker opened: it stays open as it was.
            Inner::Open { .. } => false,
        };
        if !open {
            return Transition::None;
        }
        *inner = Inner::Open {
            until: Instant::now() + self.cooldown,
        };
        tracing::warn!(sink = %self.sink, breaker = "open", cooldown_ms = self.cooldown.as_millis() as u64, "sink circuit breaker opened: deliveries are recorded as missed until a probe succeeds");
        Transition::Opened
    }

    /// When the breaker lets its next probe through, if it is open.
    pub fn open_until(&self) -> Option<Instant> {
        match *self.lock() {
            Inner::Open { until } => Some(until),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_once_after_the_cooldown_and_closes_on_success() {
        let breaker = Breaker::new("s", 3, Duration::from_millis(30));
        assert_eq!(breaker.allow(), Admission::Go);
        assert_eq!(breaker.failure(), Transition::None);
        assert_eq!(breaker.failure(), Transition::None);
        breaker.success();
        assert_eq!(breaker.failure(), Transition::None);
        assert_eq!(breaker.failure(), Transition::None);
        assert_eq!(breaker.failure(), Transition::Opened);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(matches!(breaker.allow(), Admission::Refused { .. }));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(breaker.allow(), Admission::Probe);
        assert!(
            matches!(breaker.allow(), Admission::Refused { .. }),
            "one probe at a time"
        );
        assert_eq!(
            breaker.failure(),
            Transition::Opened,
            "a failed probe reopens"
        );
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(breaker.allow(), Admission::Probe);
        assert_eq!(breaker.success(), Transition::Closed);
        assert_eq!(breaker.allow(), Admission::Go);
    }
}
