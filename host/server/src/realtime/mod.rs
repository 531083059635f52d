//! Realtime delivery: the event bus, SSE job progress, the WebSocket hub.

pub mod bus;
pub mod progress;
pub mod ws;
