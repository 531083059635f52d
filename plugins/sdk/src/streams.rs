//! The stream table behind the LLM pull interface.
//!
//! `start-stream` returns an id, `next-event` pulls the next event, `close-stream` releases it.
//! The host keeps the instance alive between those calls, so the state lives here, in the
//! instance: a table from id to a boxed [`EventSource`]. A plugin's `start_stream` registers
//! a source with [`open`] (or, for an SSE answer, [`open_sse`]; [`crate::openai_chat`] does it
//! for OpenAI-compatible vendors), and its other two methods are one line each:
//!
//! ```rust
//! use sceneintruder_plugin_sdk::llm::{CompletionResponse, ProviderError, StreamEvent};
//! use sceneintruder_plugin_sdk::streams::{self, EventSource};
//!
//! fn next_event(stream: u32) -> Result<StreamEvent, ProviderError> {
//!     streams::next_event(stream)
//! }
//!
//! fn close_stream(stream: u32) {
//!     streams::close(stream)
//! }
//!
//! /// A source that yields canned words (a real one reads the vendor's body: [`SseSource`]).
//! struct Words(Vec<&'static str>);
//!
//! impl EventSource for Words {
//!     fn next_event(&mut self) -> Result<StreamEvent, ProviderError> {
//!         if self.0.is_empty() {
//!             return Ok(StreamEvent::Done(CompletionResponse {
//!                 text: "Hello world".into(),
//!                 finish_reason: "stop".into(),
//!                 usage: None,
//!                 model: "m".into(),
//!             }));
//!         }
//!         Ok(StreamEvent::Delta(self.0.remove(0).into()))
//!     }
//! }
//!
//! let id = streams::open(Words(vec!["Hello", " world"]));
//! assert_eq!(next_event(id), Ok(StreamEvent::Delta("Hello".into())));
//! assert_eq!(next_event(id), Ok(StreamEvent::Delta(" world".into())));
//! assert!(matches!(next_event(id), Ok(StreamEvent::Done(_))));
//! // A finished stream refuses further pulls until it is closed.
//! assert!(matches!(next_event(id), Err(ProviderError::InvalidRequest(_))));
//! close_stream(id);
//! assert_eq!(streams::open_count(), 0);
//! ```
//!
//! After a `done` event or an error the source is dropped (releasing the host's body stream);
//! further `next-event` calls return `invalid-request` until the id is closed. The
//! [`completion`](crate::completion) module shows a vendor's own SSE format decoded with an
//! [`SseDecoder`] and tested over a body held in memory.

use crate::http::{BodyStream, Error as HttpError};
use crate::llm::{CompletionResponse, StreamEvent};
use crate::sse::{SseEvent, SseParser};
use crate::types::ProviderError;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

/// Something that yields the events of one stream.
pub trait EventSource {
    /// The next event. After `Done` or `Err` it is not called again.
    fn next_event(&mut self) -> Result<StreamEvent, ProviderError>;
}

enum Slot {
    Live(Box<dyn EventSource>),
    Finished,
}

struct Table {
    next_id: u32,
    slots: BTreeMap<u32, Slot>,
}

thread_local! {
    static TABLE: RefCell<Table> = const {
        RefCell::new(Table { next_id: 1, slots: BTreeMap::new() })
    };
}

/// POST `body` to `url` asking for Server-Sent Events and register the answer as a stream
/// decoded by `decoder`; a non-2xx answer is turned into a typed error by `map_error`.
/// Returns the stream id.
pub fn open_sse<D: SseDecoder + 'static>(
    url: &str,
    mut headers: Vec<(String, String)>,
    body: &serde_json::Value,
    map_error: impl FnOnce(u16, &[(String, String)], &[u8]) -> ProviderError,
    decoder: D,
) -> Result<u32, ProviderError> {
    headers.push(("Accept".into(), "text/event-stream".into()));
    let (_head, stream) =
        crate::http::send_streaming_mapped(&crate::http::post_json(url, headers, body), map_error)?;
    Ok(open(SseSource::new(stream, decoder)))
}

/// Registers a stream and returns its id (never 0).
pub fn open(source: impl EventSource + 'static) -> u32 {
    TABLE.with_borrow_mut(|t| {
        let mut id = t.next_id;
        while id == 0 || t.slots.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        t.next_id = id.wrapping_add(1);
        t.slots.insert(id, Slot::Live(Box::new(source)));
        id
    })
}

/// Pulls the next event of stream `id`; `invalid-request` for an unknown or finished stream.
pub fn next_event(id: u32) -> Result<StreamEvent, ProviderError> {
    // Take the source out while it runs so the table is not borrowed across host calls.
    let slot = TABLE.with_borrow_mut(|t| {
        t.slots
            .get_mut(&id)
            .map(|s| std::mem::replace(s, Slot::Finished))
    });
    let mut source = match slot {
        None => {
            return Err(ProviderError::InvalidRequest(format!(
                "unknown stream {id}"
            )));
        }
        Some(Slot::Finished) => {
            return Err(ProviderError::InvalidRequest(format!(
                "stream {id} has already finished"
            )));
        }
        Some(Slot::Live(source)) => source,
    };
    let result = source.next_event();
    let terminal = !matches!(result, Ok(StreamEvent::Delta(_)));
    if !terminal {
        TABLE.with_borrow_mut(|t| {
            if let Some(slot) = t.slots.get_mut(&id) {
                *slot = Slot::Live(source);
            }
        });
    }
    result
}

/// Releases stream `id` (a no-op for an unknown id).
pub fn close(id: u32) {
    let removed = TABLE.with_borrow_mut(|t| t.slots.remove(&id));
    drop(removed);
}

/// Number of streams currently registered (live or finished but not closed).
pub fn open_count() -> usize {
    TABLE.with_borrow(|t| t.slots.len())
}

/// What a decoder made of one SSE event.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Nothing to emit (role-only chunks, keep-alives, usage-only chunks...).
    Skip,
    /// Text to append.
    Delta(String),
    /// The vendor's end-of-stream marker (`[DONE]`, `message_stop`...).
    End,
}

/// Vendor-specific interpretation of SSE events, used by [`SseSource`].
pub trait SseDecoder {
    /// Interprets one event. Errors end the stream.
    fn on_event(&mut self, event: &SseEvent) -> Result<Step, ProviderError>;

    /// Builds the final response from the accumulated `text`. `body_ended` is true when the
    /// body ended without [`Step::End`]; the decoder decides whether that was an interruption
    /// (`stream-interrupted`) or a normal end (e.g. a finish reason had already arrived).
    fn finish(
        &mut self,
        text: String,
        body_ended: bool,
    ) -> Result<CompletionResponse, ProviderError>;
}

/// Bytes requested from the host per `body-stream.read`.
pub const READ_CHUNK: u32 = 16 * 1024;

/// A body read chunk by chunk; implemented for the host's [`BodyStream`].
pub trait ChunkRead {
    /// The next chunk of at most `max_bytes`, `None` at the end of the body.
    fn read_chunk(&mut self, max_bytes: u32) -> Result<Option<Vec<u8>>, HttpError>;
}

impl ChunkRead for BodyStream {
    fn read_chunk(&mut self, max_bytes: u32) -> Result<Option<Vec<u8>>, HttpError> {
        self.read(max_bytes)
    }
}

/// An [`EventSource`] over an SSE response body: reads chunks from the host, parses SSE,
/// lets the decoder turn events into deltas, and finishes with `done` carrying the whole text.
/// Deltas that arrive in one chunk are merged into one event.
///
/// A transport error while reading is returned as `provider-error::http`. When the body ends
/// in the middle of an event that the decoder cannot parse, the stream was cut:
/// `stream-interrupted`.
pub struct SseSource<D: SseDecoder, B: ChunkRead = BodyStream> {
    body: Option<B>,
    parser: SseParser,
    decoder: D,
    text: String,
    pending: VecDeque<String>,
    outcome: Option<Result<CompletionResponse, ProviderError>>,
}

impl<D: SseDecoder, B: ChunkRead> SseSource<D, B> {
    /// Wraps a 2xx streaming body (see [`crate::http::send_streaming`]).
    pub fn new(body: B, decoder: D) -> Self {
        Self {
            body: Some(body),
            parser: SseParser::new(),
            decoder,
            text: String::new(),
            pending: VecDeque::new(),
            outcome: None,
        }
    }

    fn handle(&mut self, events: Vec<SseEvent>, at_end: bool) {
        for ev in events {
            if self.outcome.is_some() {
                return;
            }
            match self.decoder.on_event(&ev) {
                Ok(Step::Skip) => {}
                Ok(Step::Delta(d)) => {
                    if !d.is_empty() {
                        self.text.push_str(&d);
                        self.pending.push_back(d);
                    }
                }
                Ok(Step::End) => {
                    let text = std::mem::take(&mut self.text);
                    self.outcome = Some(self.decoder.finish(text, false));
                }
                Err(ProviderError::BadResponse(m)) if at_end => {
                    self.outcome = Some(Err(ProviderError::StreamInterrupted(format!(
                        "the stream ended inside an event: {m}"
                    ))));
                }
                Err(e) => self.outcome = Some(Err(e)),
            }
        }
    }
}

impl<D: SseDecoder, B: ChunkRead> EventSource for SseSource<D, B> {
    fn next_event(&mut self) -> Result<StreamEvent, ProviderError> {
        loop {
            if let Some(mut delta) = self.pending.pop_front() {
                while let Some(more) = self.pending.pop_front() {
                    delta.push_str(&more);
                }
                return Ok(StreamEvent::Delta(delta));
            }
            if let Some(outcome) = self.outcome.take() {
                self.body = None;
                return outcome.map(StreamEvent::Done);
            }
            let Some(body) = self.body.as_mut() else {
                return Err(ProviderError::InvalidRequest(
                    "stream has already finished".to_string(),
                ));
            };
            match body.read_chunk(READ_CHUNK) {
                Ok(Some(chunk)) => {
                    let events = self.parser.feed(&chunk);
                    self.handle(events, false);
                }
                Ok(None) => {
                    self.body = None;
                    let last = self.parser.finish();
                    self.handle(last.into_iter().collect(), true);
                    if self.outcome.is_none() {
                        let text = std::mem::take(&mut self.text);
                        self.outcome = Some(self.decoder.finish(text, true));
                    }
                }
                Err(e) => {
                    self.body = None;
                    self.outcome = Some(Err(ProviderError::Http(e)));
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A body made of fixed chunks, optionally failing at the end.
    pub(crate) struct FakeBody {
        pub chunks: VecDeque<Vec<u8>>,
        pub fail: Option<HttpError>,
    }

    impl FakeBody {
        pub(crate) fn new(chunks: &[&[u8]]) -> Self {
            Self {
                chunks: chunks.iter().map(|c| c.to_vec()).collect(),
                fail: None,
            }
        }
    }

    impl ChunkRead for FakeBody {
        fn read_chunk(&mut self, _max: u32) -> Result<Option<Vec<u8>>, HttpError> {
            match self.chunks.pop_front() {
                Some(c) => Ok(Some(c)),
                None => match self.fail.take() {
                    Some(e) => Err(e),
                    None => Ok(None),
                },
            }
        }
    }

    /// Pulls every event of `source` until `done` or an error.
    pub(crate) fn drain(
        source: &mut dyn EventSource,
    ) -> (Vec<String>, Result<CompletionResponse, ProviderError>) {
        let mut deltas = Vec::new();
        loop {
            match source.next_event() {
                Ok(StreamEvent::Delta(d)) => deltas.push(d),
                Ok(StreamEvent::Done(r)) => return (deltas, Ok(r)),
                Err(e) => return (deltas, Err(e)),
            }
        }
    }

    struct Words(VecDeque<&'static str>);

    impl EventSource for Words {
        fn next_event(&mut self) -> Result<StreamEvent, ProviderError> {
            match self.0.pop_front() {
                Some(w) => Ok(StreamEvent::Delta(w.to_string())),
                None => Ok(StreamEvent::Done(CompletionResponse {
                    text: String::new(),
                    finish_reason: "stop".into(),
                    usage: None,
                    model: "m".into(),
                })),
            }
        }
    }

    #[test]
    fn table_lifecycle() {
        let a = open(Words(VecDeque::from(["a ", "b"])));
        let b = open(Words(VecDeque::new()));
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert_eq!(next_event(a), Ok(StreamEvent::Delta("a ".into())));
        assert!(matches!(next_event(b), Ok(StreamEvent::Done(_))));
        // Finished streams stay registered until closed but refuse further pulls.
        assert!(matches!(
            next_event(b),
            Err(ProviderError::InvalidRequest(_))
        ));
        assert_eq!(next_event(a), Ok(StreamEvent::Delta("b".into())));
        assert!(matches!(next_event(a), Ok(StreamEvent::Done(_))));
        close(a);
        close(b);
        close(b);
        assert!(
            matches!(next_event(a), Err(ProviderError::InvalidRequest(m)) if m.contains("unknown"))
        );
        assert_eq!(open_count(), 0);
    }
}
