//! A connection's two queues: frames waiting for its writer, and control messages for its own
//! task. Each has one consumer and any number of producers (the fan-out, async replies, the
//! drain, socket-id disconnects).
//!
//! Why not two tokio `mpsc` channels: each of those allocates its shared state and a first block
//! of 32 slots when made, about 3 KiB per connection for the pair, whether anything is ever sent
//! or not. An idle connection is the common case, so here both queues are `VecDeque`s that hold
//! no memory while empty, under one lock that is only ever held to push or pop.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::endpoint::{Inbox, Outbound};

#[derive(Debug)]
pub(crate) struct Mailbox {
    queues: Mutex<Queues>,
    frames_ready: Notify,
    inbox_ready: Notify,
    /// Most frames that may wait for the writer; beyond, the connection is a slow consumer.
    capacity: usize,
}

#[derive(Debug, Default)]
struct Queues {
    frames: VecDeque<Outbound>,
    inbox: VecDeque<Inbox>,
    /// Set when the connection ends: nothing more is queued, and consumers see the end.
    closed: bool,
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Full,
    Closed,
}

impl Mailbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            queues: Mutex::default(),
            frames_ready: Notify::new(),
            inbox_ready: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame for the writer without waiting.
    pub fn push_frame(&self, frame: Outbound) -> Result<(), Refused> {
        {
            let mut queues = self.lock();
            if queues.closed {
                return Err(Refused::Closed);
            }
            // A close frame always fits: it is what ends a full queue.
            if queues.frames.len() >= self.capacity && !matches!(frame, Outbound::Close(..)) {
                return Err(Refused::Full);
            }
            queues.frames.push_back(frame);
        }
        self.frames_ready.notify_one();
        Ok(())
    }

    /// Queues a control message for the connection's task. Unbounded, like the messages that
    /// use it: a close or two per connection, and intercepted broadcasts the task turns into
    /// frames (which are bounded).
    pub fn push_inbox(&self, message: Inbox) {
        {
            let mut queues = self.lock();
            if queues.closed {
                return;
            }
            queues.inbox.push_back(message);
        }
        self.inbox_ready.notify_one();
    }

    /// The next queued frame, if any.
    pub fn try_next_frame(&self) -> Option<Outbound> {
        let mut queues = self.lock();
        let frame = queues.frames.pop_front();
        if queues.frames.is_empty() {
            // An idle connection holds no queue memory; the cost is one allocation per burst
            // of frames, next to the system call that writes them.
            queues.frames = VecDeque::new();
        }
        frame
    }

    /// Returns once a frame is queued, taking nothing. A closed mailbox never has one.
    pub async fn frames_waiting(&self) {
        loop {
            let ready = self.frames_ready.notified();
            {
                let queues = self.lock();
                if !queues.frames.is_empty() {
                    return;
                }
            }
            ready.await;
        }
    }

    /// The next frame, waiting for one; `None` once the mailbox is closed and drained.
    pub async fn next_frame(&self) -> Option<Outbound> {
        loop {
            // Registered before looking, so a push between the look and the wait is not missed.
            let ready = self.frames_ready.notified();
            if let Some(frame) = self.try_next_frame() {
                return Some(frame);
            }
            if self.lock().closed {
                return None;
            }
            ready.await;
        }
    }

    /// The next control message, waiting for one; `None` once the mailbox is closed.
    pub async fn next_inbox(&self) -> Option<Inbox> {
        loop {
            let ready = self.inbox_ready.notified();
            {
                let mut queues = self.lock();
                if let Some(message) = queues.inbox.pop_front() {
                    if queues.inbox.is_empty() {
                        queues.inbox = VecDeque::new();
                    }
                    return Some(message);
                }
                if queues.closed {
                    return None;
                }
            }
            ready.await;
        }
    }

    /// Ends the mailbox: what is queued is dropped, nothing more is taken, and both consumers
    /// see the end.
    pub fn close(&self) {
        {
            let mut queues = self.lock();
            queues.closed = true;
            queues.frames = VecDeque::new();
            queues.inbox = VecDeque::new();
        }
        self.frames_ready.notify_waiters();
        self.inbox_ready.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::serializer::Frame;

    fn text(s: &str) -> Outbound {
        Outbound::Frame(Frame::Text(s.to_owned().into()))
    }

    fn text_of(frame: Option<Outbound>) -> String {
        match frame {
            Some(Outbound::Frame(Frame::Text(text))) => text.to_string(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    #[test]
    fn frames_come_out_in_order_and_a_full_queue_refuses_all_but_a_close() {
        let mailbox = Mailbox::new(2);
        assert_eq!(mailbox.push_frame(text("a")), Ok(()));
        assert_eq!(mailbox.push_frame(text("b")), Ok(()));
        assert_eq!(mailbox.push_frame(text("c")), Err(Refused::Full));
        assert_eq!(mailbox.push_frame(Outbound::Close(1013, "slow")), Ok(()));
        assert_eq!(text_of(mailbox.try_next_frame()), "a");
        assert_eq!(text_of(mailbox.try_next_frame()), "b");
        assert!(matches!(
            mailbox.try_next_frame(),
            Some(Outbound::Close(1013, _))
        ));
        assert!(mailbox.try_next_frame().is_none());
    }

    #[test]
    fn a_drained_queue_gives_its_memory_back() {
        let mailbox = Mailbox::new(1000);
        for i in 0..100 {
            mailbox.push_frame(text(&i.to_string())).expect("room");
        }
        while mailbox.try_next_frame().is_some() {}
        assert_eq!(mailbox.lock().frames.capacity(), 0);
    }

    #[tokio::test]
    async fn a_waiting_consumer_wakes_for_a_push_and_for_the_close() {
        let mailbox = Arc::new(Mailbox::new(8));
        let writer = tokio::spawn({
            let mailbox = mailbox.clone();
            async move { text_of(mailbox.next_frame().await) }
        });
        let task = tokio::spawn({
            let mailbox = mailbox.clone();
            async move { mailbox.next_inbox().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        mailbox.push_frame(text("hello")).expect("room");
        assert_eq!(writer.await.expect("writer"), "hello");
        mailbox.close();
        assert!(task.await.expect("task").is_none());
        assert_eq!(mailbox.push_frame(text("late")), Err(Refused::Closed));
        assert!(mailbox.next_frame().await.is_none());
    }

    #[tokio::test]
    async fn a_push_before_the_wait_is_not_lost() {
        let mailbox = Mailbox::new(8);
        mailbox.push_inbox(Inbox::Close(1000, "bye"));
        let message = tokio::time::timeout(Duration::from_secs(5), mailbox.next_inbox())
            .await
            .expect("not lost");
        assert!(matches!(message, Some(Inbox::Close(1000, "bye"))));
    }
}
