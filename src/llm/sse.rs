//! A server-sent events parser that takes bytes as they arrive, split anywhere.
//!
//! Handles what real providers send: a UTF-8 BOM, `\r\n`, `\n` or `\r` line ends (also
//! split across reads), `data:` with or without the space, comment lines (`: keep-alive`,
//! `: OPENROUTER PROCESSING`), several `data:` lines joined with `\n`, and a last event with
//! no blank line after it (flushed by [`SseParser::finish`]). Lines are decoded only when
//! complete, so a UTF-8 character split between reads is never cut.

/// One dispatched event. Borrowed from the parser; valid until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` name, empty when the event had none.
    pub event: &'a str,
    pub data: &'a str,
}

#[derive(Default)]
pub struct SseParser {
    /// Bytes of a line not yet terminated.
    partial: Vec<u8>,
    event: String,
    data: String,
    /// Any `data:` line seen for the current event (data may be empty).
    has_data: bool,
    /// The previous read ended with `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    started: bool,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds the next bytes; calls `on_event` for each complete event.
    pub fn feed(&mut self, mut bytes: &[u8], on_event: &mut dyn FnMut(SseEvent<'_>)) {
        if !self.started {
            // The BOM may itself arrive split; wait until three bytes decide it.
            if self.partial.len() + bytes.len() < 3
                && b"\xEF\xBB\xBF".starts_with(&[&self.partial[..], bytes].concat())
            {
                self.partial.extend_from_slice(bytes);
                return;
            }
            self.started = true;
            if !self.partial.is_empty() {
                let mut head = std::mem::take(&mut self.partial);
                head.extend_from_slice(bytes);
                let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head).to_vec();
                self.feed(&head, on_event);
                return;
            }
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', bytes) {
            let line_end = pos;
            let mut next = pos + 1;
            if bytes[pos] == b'\r' {
                match bytes.get(pos + 1) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if self.partial.is_empty() {
                self.line(&bytes[..line_end], on_event);
            } else {
                self.partial.extend_from_slice(&bytes[..line_end]);
                let line = std::mem::take(&mut self.partial);
                self.line(&line, on_event);
                self.partial = line;
                self.partial.clear();
            }
            bytes = &bytes[next..];
        }
        self.partial.extend_from_slice(bytes);
    }

    /// The stream ended: an unterminated last line and a last event without the blank
    /// line are still delivered.
    pub fn finish(&mut self, on_event: &mut dyn FnMut(SseEvent<'_>)) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            let line = if self.started {
                &line[..]
            } else {
                line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line)
            };
            self.line(line, on_event);
        }
        self.dispatch(on_event);
    }

    fn line(&mut self, line: &[u8], on_event: &mut dyn FnMut(SseEvent<'_>)) {
        if line.is_empty() {
            self.dispatch(on_event);
            return;
        }
        if line[0] == b':' {
            return; // a comment
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.has_data = true;
                push_utf8(&mut self.data, value);
            }
            b"event" => {
                self.event.clear();
                push_utf8(&mut self.event, value);
            }
            _ => {} // `id`, `retry` and unknown fields carry nothing kiln uses
        }
    }

    fn dispatch(&mut self, on_event: &mut dyn FnMut(SseEvent<'_>)) {
        if self.has_data {
            on_event(SseEvent {
                event: &self.event,
                data: &self.data,
            });
        }
        self.has_data = false;
        self.data.clear();
        self.event.clear();
    }
}

fn push_utf8(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => out.push_str(text),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<(String, String)> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        let mut push = |ev: SseEvent<'_>| out.push((ev.event.to_owned(), ev.data.to_owned()));
        for chunk in chunks {
            parser.feed(chunk, &mut push);
        }
        parser.finish(&mut push);
        out
    }

    fn split_everywhere(stream: &[u8]) -> Vec<(String, String)> {
        let whole = events(&[stream]);
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(events(&[a, b]), whole, "split at byte {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(events(&bytes), whole, "one byte at a time");
        whole
    }

    fn ev(event: &str, data: &str) -> (String, String) {
        (event.to_owned(), data.to_owned())
    }

    #[test]
    fn line_endings_bom_comments_and_split_points() {
        let stream = "\u{feff}: keep-alive\r\nevent: message_start\r\ndata: {\"a\":\"é😀\"}\r\n\r\ndata:{\"b\":1}\r\r: OPENROUTER PROCESSING\n\ndata: x\ndata: y\n\ndata: [DONE]";
        assert_eq!(
            split_everywhere(stream.as_bytes()),
            vec![
                ev("message_start", "{\"a\":\"é😀\"}"),
                ev("", "{\"b\":1}"),
                ev("", "x\ny"),
                ev("", "[DONE]"),
            ]
        );
    }

    #[test]
    fn events_without_data_are_not_dispatched_and_names_reset() {
        assert_eq!(
            events(&[b"event: ping\n\nevent: a\ndata: 1\n\ndata: 2\n\n"]),
            vec![ev("a", "1"), ev("", "2")]
        );
    }

    #[test]
    fn empty_data_line_is_an_event_with_empty_data() {
        assert_eq!(events(&[b"data:\n\n"]), vec![ev("", "")]);
    }
}
