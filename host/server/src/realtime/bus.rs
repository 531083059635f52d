//! The internal event bus: jobs and features publish, SSE streams and the WebSocket hub
//! read. The database stays the source of truth; the bus only carries changes, so a
//! subscriber that lags re-reads state instead of losing it.
//!
//! `EventBus` is the seam for several server instances: a PostgreSQL LISTEN/NOTIFY
//! implementation publishes to the database and feeds received notifications to local
//! subscribers, with the same interface.

use std::sync::Arc;

use sceneintruder_store::Job;
use serde_json::Value;
use tokio::sync::broadcast;

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// A job changed (progress, state). Carries the stored row after the change.
    Job(Arc<Job>),
    /// A message for every WebSocket client in `room`.
    Room { room: String, message: Arc<Value> },
}

pub trait EventBus: Send + Sync {
    fn publish(&self, event: Event);
    fn subscribe(&self) -> broadcast::Receiver<Event>;
}

/// In-process bus for a single server.
pub struct LocalBus {
    tx: broadcast::Sender<Event>,
}

impl LocalBus {
    /// `capacity` events are buffered per subscriber before it lags.
    pub fn new(capacity: usize) -> LocalBus {
        let (tx, _) = broadcast::channel(capacity.max(16));
        LocalBus { tx }
    }
}

impl EventBus for LocalBus {
    fn publish(&self, event: Event) {
        // No subscribers is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
