//! How much the machine itself stalled during a run: a thread that asks to sleep 1 ms, over and
//! over, and records how late it woke. On a shared virtual machine the hypervisor sometimes
//! takes the cores away for tens or hundreds of milliseconds; every message in flight then waits
//! too, and a latency percentile measures the machine rather than the server. Read next to a
//! run's p99, this tells the two apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

const TICK: Duration = Duration::from_millis(1);
/// A wake-up later than this counts as a stall.
const STALL: Duration = Duration::from_millis(10);

/// What the meter saw.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stalls {
    /// The latest wake-up, beyond the 1 ms asked for.
    pub max_ms: f64,
    /// Wake-ups more than 10 ms late.
    pub count: u64,
    /// The time lost in those, summed.
    pub total_ms: f64,
}

/// A running meter; [`StallMeter::stop`] ends it and reports.
pub struct StallMeter {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Stalls>,
}

impl StallMeter {
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Stalls {
                max_ms: 0.0,
                count: 0,
                total_ms: 0.0,
            };
            while !stopped.load(Ordering::Relaxed) {
                let asked = Instant::now();
                std::thread::sleep(TICK);
                let late = asked.elapsed().saturating_sub(TICK);
                let late_ms = late.as_secs_f64() * 1e3;
                seen.max_ms = seen.max_ms.max(late_ms);
                if late > STALL {
                    seen.count += 1;
                    seen.total_ms += late_ms;
                }
            }
            seen
        });
        Self { stop, thread }
    }

    pub fn stop(self) -> Stalls {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(Stalls {
            max_ms: f64::NAN,
            count: 0,
            total_ms: f64::NAN,
        })
    }
}
