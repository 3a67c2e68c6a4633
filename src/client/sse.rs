//! Incremental Server-Sent Events decoder.
//!
//! The stream arrives in arbitrary pieces (TCP reads, HTTP chunks), so an event can be split
//! anywhere, even inside a CRLF pair. The decoder keeps only the unfinished line and the data of
//! the unfinished event; everything else is handed out as soon as its blank line arrives, so the
//! caller can stamp each event with the arrival time of the bytes that completed it.

/// Largest event accepted. Events past 1 MiB do happen (a long tool call, logprobs, a server
/// that batches text) and are handled; one past this is almost certainly a broken server, and
/// refusing it keeps a single bad stream from eating the client's memory.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an SSE event is larger than {} (llm-bench's limit)", describe_size(*.0))]
    EventTooLarge(usize),
}

fn describe_size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// The first `\n` or `\r` in `bytes`, eight bytes at a time: the decoder looks at every byte
/// of every event, and a byte-by-byte search was its largest cost per event.
fn find_line_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const LF: u64 = u64::from_ne_bytes([b'\n'; 8]);
    const CR: u64 = u64::from_ne_bytes([b'\r'; 8]);
    // A word has a zero byte iff (w - 0x01..) & !w & 0x80.. is not zero (exact for "any").
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let mut at = 0;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_ne_bytes(word.try_into().expect("chunks of 8"));
        if has_zero(w ^ LF) | has_zero(w ^ CR) != 0 {
            break;
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map(|i| at + i)
}

#[derive(Debug)]
pub struct SseDecoder {
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    /// `data:` payload of the current event; lines are joined with '\n' as the spec says.
    data: Vec<u8>,
    has_data: bool,
    /// The previous piece ended with '\r': a '\n' starting the next piece belongs to it.
    skip_lf: bool,
    max_event: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    pub fn new(max_event: usize) -> Self {
        Self {
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            skip_lf: false,
            max_event,
        }
    }

    /// Feeds a piece of the stream; calls `on_event` with the data of every event it completes.
    pub fn feed(&mut self, mut input: &[u8], mut on_event: impl FnMut(&[u8])) -> Result<(), SseError> {
        if self.skip_lf {
            if let Some(rest) = input.strip_prefix(b"\n") {
                input = rest;
            }
            if !input.is_empty() {
                self.skip_lf = false;
            }
        }
        while !input.is_empty() {
            match find_line_end(input) {
                None => {
                    if self.line.len() + input.len() > self.max_event {
                        return Err(self.overflow());
                    }
                    self.line.extend_from_slice(input);
                    return Ok(());
                }
                Some(end) => {
                    let terminator = input[end];
                    if self.line.is_empty() {
                        self.process_line(&input[..end], &mut on_event)?;
                    } else {
                        let mut line = std::mem::take(&mut self.line);
                        line.extend_from_slice(&input[..end]);
                        let result = self.process_line(&line, &mut on_event);
                        line.clear();
                        self.line = line;
                        result?;
                    }
                    input = &input[end + 1..];
                    if terminator == b'\r' {
                        match input.first() {
                            Some(b'\n') => input = &input[1..],
                            Some(_) => {}
                            None => self.skip_lf = true,
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The stream ended. A last event without its blank line is still delivered: several servers
    /// end with `data: [DONE]\n` only, and dropping it would misreport a clean end as a cut.
    pub fn finish(&mut self, mut on_event: impl FnMut(&[u8])) -> Result<(), SseError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, &mut on_event)?;
        }
        self.dispatch(&mut on_event);
        Ok(())
    }

    fn overflow(&mut self) -> SseError {
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        SseError::EventTooLarge(self.max_event)
    }

    fn process_line(&mut self, line: &[u8], on_event: &mut impl FnMut(&[u8])) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(on_event);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(()); // comment / keep-alive
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        if field == b"data" {
            if self.data.len() + value.len() + 1 > self.max_event {
                return Err(self.overflow());
            }
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        // `event`, `id` and `retry` carry nothing an OpenAI-style stream needs.
        Ok(())
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(&[u8])) {
        if self.has_data {
            on_event(&self.data);
            self.data.clear();
            self.has_data = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_pieces(pieces: &[&[u8]]) -> Vec<String> {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for piece in pieces {
            decoder
                .feed(piece, |e| out.push(String::from_utf8_lossy(e).into_owned()))
                .unwrap();
        }
        decoder
            .finish(|e| out.push(String::from_utf8_lossy(e).into_owned()))
            .unwrap();
        out
    }

    const STREAM: &[u8] = b": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\ndata: {\"choices\":[]}\n\nevent: x\ndata: line1\ndata: line2\n\ndata:[DONE]\n\n";

    fn expected() -> Vec<String> {
        vec![
            "{\"a\":1}".to_string(),
            "{\"choices\":[]}".to_string(),
            "line1\nline2".to_string(),
            "[DONE]".to_string(),
        ]
    }

    #[test]
    fn line_ends_are_found_at_every_position() {
        for len in 0..40 {
            for at in 0..=len {
                for end in [b'\n', b'\r'] {
                    let mut bytes = vec![b'x'; len];
                    if at < len {
                        bytes[at] = end;
                    }
                    // Bytes that differ from the terminators only in their high bit.
                    for (i, b) in bytes.iter_mut().enumerate() {
                        if i != at && i % 3 == 0 {
                            *b = end | 0x80;
                        }
                    }
                    let want = bytes.iter().position(|&b| b == b'\n' || b == b'\r');
                    assert_eq!(find_line_end(&bytes), want, "len {len} at {at}");
                }
            }
        }
    }

    #[test]
    fn whole_stream_in_one_read() {
        assert_eq!(decode_pieces(&[STREAM]), expected());
    }

    #[test]
    fn split_at_every_byte_position() {
        for split in 0..=STREAM.len() {
            let (a, b) = STREAM.split_at(split);
            assert_eq!(decode_pieces(&[a, b]), expected(), "split at {split}");
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let pieces: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(decode_pieces(&pieces), expected());
    }

    #[test]
    fn split_at_every_pair_of_positions() {
        for i in 0..=STREAM.len() {
            for j in i..=STREAM.len() {
                let pieces = [&STREAM[..i], &STREAM[i..j], &STREAM[j..]];
                assert_eq!(decode_pieces(&pieces), expected(), "splits at {i},{j}");
            }
        }
    }

    #[test]
    fn bare_cr_line_ends() {
        assert_eq!(decode_pieces(&[b"data: a\r\rdata: b\r\r"]), vec!["a", "b"]);
    }

    #[test]
    fn stream_without_done_or_final_blank_line() {
        assert_eq!(
            decode_pieces(&[b"data: {\"x\":1}\n\ndata: last"]),
            vec!["{\"x\":1}", "last"]
        );
    }

    #[test]
    fn comments_only_yield_nothing() {
        assert!(decode_pieces(&[b": ping\n\n: ping\n\n"]).is_empty());
    }

    #[test]
    fn oversized_event_is_an_error_not_a_panic() {
        let mut decoder = SseDecoder::new(16);
        let err = decoder.feed(b"data: 0123456789abcdefghij", |_| {}).unwrap_err();
        assert_eq!(err, SseError::EventTooLarge(16));
        // The decoder stays usable after the error.
        let mut out = Vec::new();
        decoder.feed(b"\n\ndata: ok\n\n", |e| out.push(e.to_vec())).unwrap();
        assert_eq!(out, vec![b"ok".to_vec()]);
    }
}
