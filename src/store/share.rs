//! The pool, shared so that the gate never waits behind data work (design
//! §4.8). Sign-in and the gate take connections from the pool directly; data
//! work (`POST /v1/api`) first takes a permit of a [`Share`] that is
//! [`RESERVED`] smaller than the pool, so however many heavy queries run,
//! that many connections stay free for sessions and sign-ins.

use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::Store;

/// Connections of the pool that data work never takes.
pub const RESERVED: u32 = 1;

/// Permits for data work: one per connection it may hold at once.
#[derive(Debug)]
pub struct Share {
    permits: Semaphore,
    /// How long a request waits for a permit before it is told to retry.
    wait: Duration,
}

impl Share {
    /// The share of `store`'s pool left after [`RESERVED`] (at least one).
    /// The change listener has a connection of its own, outside the pool.
    pub fn new(store: &Store, wait: Duration) -> Self {
        let size = store.max_connections().saturating_sub(RESERVED).max(1);
        Self { permits: Semaphore::new(size as usize), wait }
    }

    /// Waits for a permit, for at most the share's `wait`; `None` when the
    /// pool stayed full of data work that long.
    pub async fn enter(&self) -> Option<SemaphorePermit<'_>> {
        tokio::time::timeout(self.wait, self.permits.acquire()).await.ok()?.ok()
    }
}
