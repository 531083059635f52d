//! A server-sent-events parser that is fed raw body chunks.
//!
//! It follows the SSE rules that matter for LLM vendors: lines end in `\n`, `\r\n` or `\r`
//! (a line, even a multi-byte character, may be split across chunks); lines starting with `:`
//! are comments; `data:` lines accumulate (joined by `\n`) until a blank line dispatches the
//! event; `event:` names it; a single space after the colon is dropped. At the end of the body
//! [`SseParser::finish`] dispatches a last event that lacks its blank line. The OpenAI
//! terminator `data: [DONE]` arrives as an ordinary event; see [`SseEvent::is_done`].

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

impl SseEvent {
    /// True for the OpenAI-style terminator `data: [DONE]`.
    pub fn is_done(&self) -> bool {
        self.data.trim() == "[DONE]"
    }
}

/// Incremental SSE parser.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, unterminated line.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next chunk belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// A parser with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one chunk of the body and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(&mut out),
                b'\r' => {
                    self.end_line(&mut out);
                    self.after_cr = true;
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    /// Ends the body: processes an unterminated last line and dispatches a pending event.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut out);
        }
        self.after_cr = false;
        // A blank line inside `end_line` cannot happen here, so `out` is empty; dispatch what
        // is pending.
        out.pop().or_else(|| self.dispatch())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if let Some(ev) = self.dispatch() {
                out.push(ev);
            }
            return;
        }
        if line[0] == b':' {
            return; // comment
        }
        let line = String::from_utf8_lossy(&line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            _ => {} // id, retry and unknown fields are irrelevant here
        }
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        self.data.take().map(|data| SseEvent { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(d: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: d.to_string(),
        }
    }

    #[test]
    fn basic_events_and_done() {
        let mut p = SseParser::new();
        let evs = p.feed(b"data: {\"a\":1}\n\ndata: [DONE]\n\n");
        assert_eq!(evs, vec![data("{\"a\":1}"), data("[DONE]")]);
        assert!(!evs[0].is_done());
        assert!(evs[1].is_done());
        assert_eq!(p.finish(), None);
    }

    #[test]
    fn lines_split_across_chunks() {
        let body = "data: {\"choices\":[{\"delta\":{\"content\":\"héllo\"}}]}\n\n: keep-alive\n\ndata: [DONE]\n\n";
        // Every split point, including inside the multi-byte `é`.
        for split in 0..body.len() {
            let (a, b) = body.as_bytes().split_at(split);
            let mut p = SseParser::new();
            let mut evs = p.feed(a);
            evs.extend(p.feed(b));
            assert_eq!(p.finish(), None, "split at {split}");
            assert_eq!(
                evs,
                vec![
                    data("{\"choices\":[{\"delta\":{\"content\":\"héllo\"}}]}"),
                    data("[DONE]")
                ],
                "split at {split}"
            );
        }
        // Byte by byte.
        let mut p = SseParser::new();
        let evs: Vec<_> = body.as_bytes().iter().flat_map(|b| p.feed(&[*b])).collect();
        assert_eq!(evs.len(), 2);
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let mut p = SseParser::new();
        let mut evs = p.feed(b"data: one\r");
        evs.extend(p.feed(b"\n\r\ndata: two\r\r"));
        assert_eq!(evs, vec![data("one"), data("two")]);
    }

    #[test]
    fn comments_fields_and_multiline_data() {
        let mut p = SseParser::new();
        let evs = p.feed(
            b": comment\nevent: message_delta\nid: 7\nretry: 10\ndata: line1\ndata:line2\ndata\n\n\n\n",
        );
        assert_eq!(
            evs,
            vec![SseEvent {
                event: Some("message_delta".into()),
                data: "line1\nline2\n".into()
            }]
        );
        // Blank lines without data dispatch nothing; a comment-only stream yields nothing.
        assert!(p.feed(b"\n\n: ping\n\n").is_empty());
    }

    #[test]
    fn finish_flushes_a_trailing_event() {
        let mut p = SseParser::new();
        assert!(p.feed(b"data: {\"x\":1}\ndata: tail").is_empty());
        assert_eq!(p.finish(), Some(data("{\"x\":1}\ntail")));
        assert_eq!(p.finish(), None);
    }
}
