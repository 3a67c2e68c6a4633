//! Turns the bytes of one response stream into the timeline of a [`RequestRecord`].
//!
//! Kept free of I/O so every decision (what is a token, when a stream counts as complete, how
//! tokens are counted without `usage`) is unit-tested on plain bytes.

use super::event::{bounded_finish_reason, decode_event, Event, ServerTimings, Usage};
use super::record::{ErrorClass, RequestRecord, ANSWER_TEXT_LIMIT};
use super::sse::SseDecoder;

#[derive(Debug, Default)]
pub struct StreamReader {
    decoder: SseDecoder,
    state: StreamState,
}

/// Appends `text` to the record's answer, up to [`ANSWER_TEXT_LIMIT`] bytes (cut at a
/// character boundary).
pub(crate) fn append_answer(rec: &mut RequestRecord, text: &str) {
    let answer = rec.answer_text.get_or_insert_with(String::new);
    let room = ANSWER_TEXT_LIMIT.saturating_sub(answer.len());
    if text.len() <= room {
        answer.push_str(text);
    } else {
        let cut = (0..=room).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        answer.push_str(&text[..cut]);
    }
}

/// What the events said so far.
#[derive(Debug, Default)]
struct StreamState {
    done: bool,
    finished: bool,
    usage: Option<Usage>,
    timings: Option<ServerTimings>,
    malformed: Option<String>,
    invalid_utf8: Option<String>,
    too_large: Option<String>,
    server_error: Option<String>,
    content_chunks: u64,
    /// Events with reasoning text: the reasoning tokens' estimate when the server gives none.
    reasoning_chunks: u64,
    finish_reason: Option<String>,
    /// Append the answer's text to the record.
    keep_text: bool,
    last_event_us: Option<u64>,
    /// Tokens in each text chunk, from per-chunk usage (vLLM's `continuous_usage_stats`):
    /// the difference of cumulative `completion_tokens` between text chunks. Kept while every
    /// text chunk so far carried usage and the counts never went back.
    per_chunk: PerChunkTokens,
}

#[derive(Debug, Default)]
struct PerChunkTokens {
    tokens: Vec<u32>,
    /// Cumulative completion tokens at the last text chunk.
    so_far: u64,
    /// A text chunk came without usage, or the counts went back: nothing known per chunk.
    broken: bool,
}

impl PerChunkTokens {
    fn on_text_chunk(&mut self, usage: Option<Usage>) {
        if self.broken {
            return;
        }
        match usage {
            Some(u) if u.completion_tokens >= self.so_far => {
                let tokens = u32::try_from(u.completion_tokens - self.so_far).unwrap_or(u32::MAX);
                self.tokens.push(tokens);
                self.so_far = u.completion_tokens;
            }
            _ => {
                self.broken = true;
                self.tokens = Vec::new();
            }
        }
    }

    /// Tokens per text chunk, when every text chunk said.
    fn known(self) -> Option<Vec<u32>> {
        (!self.broken && !self.tokens.is_empty()).then_some(self.tokens)
    }
}

impl StreamState {
    fn on_event(&mut self, data: &[u8], t_us: u64, rec: &mut RequestRecord) {
        rec.events += 1;
        rec.first_event_us.get_or_insert(t_us);
        self.last_event_us = Some(t_us);
        match decode_event(data) {
            Ok(Event::Done) => self.done = true,
            Ok(Event::Chunk(info)) => {
                if info.has_text {
                    rec.first_token_us.get_or_insert(t_us);
                    rec.last_token_us = Some(t_us);
                    rec.token_us.push(t_us);
                    self.content_chunks += 1;
                    self.per_chunk.on_text_chunk(info.usage);
                }
                if info.has_reasoning {
                    rec.first_reasoning_us.get_or_insert(t_us);
                    self.reasoning_chunks += 1;
                }
                if info.has_answer {
                    rec.first_answer_us.get_or_insert(t_us);
                }
                if self.keep_text {
                    if let Some(text) = &info.answer {
                        append_answer(rec, text);
                    }
                }
                if let Some(reason) = &info.finish_reason {
                    if self.finish_reason.as_deref() != Some(&**reason) {
                        self.finish_reason = Some(bounded_finish_reason(reason));
                    }
                }
                self.finished |= info.finished;
                if info.usage.is_some() {
                    self.usage = info.usage;
                }
                if info.timings.is_some() {
                    self.timings = info.timings;
                }
                if let Some(message) = info.error {
                    self.server_error.get_or_insert(message);
                }
                if info.invalid_utf8 {
                    // No excerpt: the same fault then reads the same, and the summary can
                    // count it as one message.
                    self.invalid_utf8
                        .get_or_insert("invalid UTF-8 in a stream event (its text was read with U+FFFD)".into());
                }
            }
            Err(e) => {
                self.malformed.get_or_insert(e.0);
            }
        }
    }
}

impl StreamReader {
    /// A reader that also keeps the answer's text on the record (`answer_text`).
    pub fn keeping_text(keep_text: bool) -> Self {
        let mut reader = Self::default();
        reader.state.keep_text = keep_text;
        reader
    }

    /// Feeds bytes that arrived `t_us` after the send start.
    pub fn feed(&mut self, bytes: &[u8], t_us: u64, rec: &mut RequestRecord) {
        let state = &mut self.state;
        if let Err(e) = self.decoder.feed(bytes, |data| state.on_event(data, t_us, rec)) {
            state.too_large.get_or_insert(format!("{e}; it was skipped"));
        }
    }

    /// Time of the last event, for the idle timeout.
    pub fn last_event_us(&self) -> Option<u64> {
        self.state.last_event_us
    }

    /// The body ended cleanly: deliver a last unterminated event, if any.
    pub fn end_of_body(&mut self, t_us: u64, rec: &mut RequestRecord) {
        let state = &mut self.state;
        if let Err(e) = self.decoder.finish(|data| state.on_event(data, t_us, rec)) {
            state.too_large.get_or_insert(format!("{e}; it was skipped"));
        }
    }

    /// Fills counts and outcome. `failure` is a transport-level failure already known (cut,
    /// timeout); otherwise the stream's own content decides, the most telling problem first.
    pub fn finalize(
        self,
        rec: &mut RequestRecord,
        failure: Option<(ErrorClass, String)>,
        estimated_prompt_tokens: u64,
    ) {
        let state = self.state;
        rec.finish_reason = state.finish_reason;
        rec.cached_tokens = state.usage.and_then(|u| u.cached_tokens());
        match state.usage.and_then(|u| u.reasoning_tokens()) {
            Some(n) => {
                rec.reasoning_tokens = Some(n);
                rec.reasoning_tokens_estimated = false;
            }
            None if state.reasoning_chunks > 0 => {
                rec.reasoning_tokens = Some(state.reasoning_chunks);
                rec.reasoning_tokens_estimated = true;
            }
            None => {
                rec.reasoning_tokens = None;
                rec.reasoning_tokens_estimated = false;
            }
        }
        if state.keep_text {
            rec.answer_text.get_or_insert_with(String::new);
        }
        match state.usage {
            Some(usage) => {
                rec.prompt_tokens = usage.prompt_tokens;
                rec.output_tokens = usage.completion_tokens;
                rec.tokens_estimated = false;
            }
            None => {
                // No usage: one token per chunk with text (what most servers send), and a
                // character-based estimate for the prompt. Marked as estimated.
                rec.prompt_tokens = estimated_prompt_tokens;
                rec.output_tokens = state.content_chunks;
                rec.tokens_estimated = true;
            }
        }
        rec.server_timings = state.timings;
        match state.per_chunk.known() {
            Some(tokens) => {
                rec.first_chunk_tokens = Some(u64::from(tokens[0]));
                // One token per chunk needs no list: the first chunk's count says it.
                rec.chunk_tokens = if tokens.iter().all(|&n| n == 1) {
                    Vec::new()
                } else {
                    tokens
                };
            }
            None => {
                rec.first_chunk_tokens = None;
                rec.chunk_tokens = Vec::new();
            }
        }
        let outcome = failure
            .or_else(|| {
                state
                    .server_error
                    .map(|m| (ErrorClass::ServerError, format!("error in stream: {m}")))
            })
            .or_else(|| state.too_large.map(|m| (ErrorClass::EventTooLarge, m)))
            .or_else(|| state.malformed.map(|m| (ErrorClass::MalformedStream, m)))
            .or_else(|| state.invalid_utf8.map(|m| (ErrorClass::InvalidUtf8, m)))
            .or_else(|| {
                (!state.done && !state.finished).then(|| {
                    (
                        ErrorClass::StreamIncomplete,
                        "the response ended before [DONE] or a finish_reason".to_string(),
                    )
                })
            });
        match outcome {
            Some((class, message)) => {
                rec.ok = false;
                rec.error = Some(class);
                rec.error_message = Some(message);
            }
            None => {
                rec.ok = true;
                rec.error = None;
                rec.error_message = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pieces: &[(&str, u64)], failure: Option<(ErrorClass, String)>) -> RequestRecord {
        let mut rec = RequestRecord::default();
        let mut reader = StreamReader::default();
        for (bytes, t) in pieces {
            reader.feed(bytes.as_bytes(), *t, &mut rec);
        }
        reader.end_of_body(1000, &mut rec);
        rec.end_us = 1000;
        reader.finalize(&mut rec, failure, 99);
        rec
    }

    const ROLE: &str = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
    const TOKEN: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n";
    const LAST: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"y\"},\"finish_reason\":\"length\"}]}\n\n";
    const USAGE: &str = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":3}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    #[test]
    fn role_chunk_is_not_the_first_token() {
        let rec = run(
            &[
                (ROLE, 10),
                (TOKEN, 50),
                (TOKEN, 60),
                (LAST, 70),
                (USAGE, 71),
                (DONE, 72),
            ],
            None,
        );
        assert!(rec.ok);
        assert_eq!(rec.first_event_us, Some(10));
        assert_eq!(rec.first_token_us, Some(50));
        assert_eq!(rec.last_token_us, Some(70));
        assert_eq!(rec.token_us, vec![50, 60, 70]);
        assert_eq!(
            (rec.prompt_tokens, rec.output_tokens, rec.tokens_estimated),
            (40, 3, false)
        );
        assert_eq!(rec.events, 6);
    }

    #[test]
    fn without_usage_chunks_are_counted_and_marked_estimated() {
        let rec = run(&[(TOKEN, 5), (TOKEN, 6), (DONE, 7)], None);
        assert!(rec.ok);
        assert_eq!(
            (rec.prompt_tokens, rec.output_tokens, rec.tokens_estimated),
            (99, 2, true)
        );
    }

    #[test]
    fn finish_reason_without_done_is_complete() {
        assert!(run(&[(TOKEN, 5), (LAST, 6)], None).ok);
    }

    #[test]
    fn early_end_keeps_received_tokens() {
        let rec = run(&[(TOKEN, 5), (TOKEN, 6)], None);
        assert!(!rec.ok);
        assert_eq!(rec.error, Some(ErrorClass::StreamIncomplete));
        assert_eq!(rec.output_tokens, 2);
        assert_eq!(rec.partial_tokens(), 2);
    }

    #[test]
    fn malformed_event_marks_the_request_but_keeps_counting() {
        let rec = run(&[(TOKEN, 5), ("data: {oops\n\n", 6), (TOKEN, 7), (DONE, 8)], None);
        assert_eq!(rec.error, Some(ErrorClass::MalformedStream));
        assert_eq!(rec.output_tokens, 2);
    }

    #[test]
    fn error_object_in_stream() {
        let rec = run(
            &[
                (TOKEN, 5),
                ("data: {\"error\":{\"message\":\"boom\"}}\n\n", 6),
                (DONE, 7),
            ],
            None,
        );
        assert_eq!(rec.error, Some(ErrorClass::ServerError));
        assert!(rec.error_message.unwrap().contains("boom"));
    }

    #[test]
    fn invalid_utf8_counts_its_tokens_and_fails_the_request() {
        let bad = "data: {\"choices\":[{\"delta\":{\"content\":\"\u{1}x\"}}]}\n\n";
        let mut rec = RequestRecord::default();
        let mut reader = StreamReader::default();
        reader.feed(TOKEN.as_bytes(), 5, &mut rec);
        let bytes: Vec<u8> = bad.bytes().map(|b| if b == 1 { 0xff } else { b }).collect();
        reader.feed(&bytes, 6, &mut rec);
        reader.feed(LAST.as_bytes(), 7, &mut rec);
        reader.feed(DONE.as_bytes(), 8, &mut rec);
        reader.finalize(&mut rec, None, 0);
        assert_eq!(rec.error, Some(ErrorClass::InvalidUtf8));
        assert_eq!(rec.output_tokens, 3);
        assert!(rec.error_message.unwrap().contains("invalid UTF-8"));
    }

    #[test]
    fn oversized_event_is_skipped_and_classified() {
        let huge = format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
            "x".repeat(17 << 20)
        );
        let rec = run(&[(TOKEN, 5), (&huge, 6), (LAST, 7), (DONE, 8)], None);
        assert_eq!(rec.error, Some(ErrorClass::EventTooLarge));
        assert_eq!(rec.output_tokens, 2, "the events around it still count");
        assert!(rec.error_message.unwrap().contains("skipped"));
    }

    #[test]
    fn unterminated_last_event_is_delivered() {
        let rec = run(&[(TOKEN, 5), ("data: [DONE]", 6)], None);
        assert!(rec.ok, "{:?}", rec.error_message);
    }

    /// A text chunk carrying vLLM's per-chunk usage (cumulative completion tokens).
    fn counted(text: &str, completion: u64) -> String {
        format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{text}\"}}}}],\"usage\":{{\"prompt_tokens\":40,\"completion_tokens\":{completion},\"total_tokens\":{}}}}}\n\n",
            40 + completion
        )
    }

    fn final_usage(completion: u64) -> String {
        format!("data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":40,\"completion_tokens\":{completion}}}}}\n\n")
    }

    #[test]
    fn per_chunk_usage_gives_the_tokens_of_each_chunk() {
        // vLLM's layout: the role chunk with completion_tokens 0, every text chunk with the
        // count so far, then the final usage chunk. 10 tokens in chunks of 4, 4, 2.
        let role = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":0,\"total_tokens\":40}}\n\n";
        let (a, b, c, end) = (counted("a", 4), counted("b", 8), counted("c", 10), final_usage(10));
        let rec = run(
            &[(role, 10), (&a, 50), (&b, 60), (&c, 70), (&end, 71), (DONE, 72)],
            None,
        );
        assert!(rec.ok);
        assert_eq!(rec.token_us, vec![50, 60, 70]);
        assert_eq!((rec.output_tokens, rec.first_chunk_tokens), (10, Some(4)));
        assert_eq!(rec.chunk_tokens, vec![4, 4, 2]);
        assert_eq!(rec.tokens_after_first_chunk(), Some(6.0));
        assert!(!rec.tokens_per_chunk_estimated());
    }

    #[test]
    fn per_chunk_usage_with_one_token_each_keeps_no_list() {
        let (a, b, c) = (counted("a", 1), counted("b", 2), counted("c", 3));
        let rec = run(&[(&a, 5), (&b, 6), (&c, 7), (DONE, 8)], None);
        assert_eq!((rec.output_tokens, rec.first_chunk_tokens), (3, Some(1)));
        assert!(rec.chunk_tokens.is_empty());
    }

    #[test]
    fn tokens_in_a_chunk_without_text_go_to_the_next_text_chunk() {
        // A token whose text is not complete yet arrives in a chunk with empty content.
        let empty = "data: {\"choices\":[{\"delta\":{\"content\":\"\"}}],\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":3}}\n\n";
        let (a, c) = (counted("a", 2), counted("c", 5));
        let rec = run(&[(&a, 5), (empty, 6), (&c, 7), (DONE, 8)], None);
        assert_eq!(rec.chunk_tokens, vec![2, 3]);
    }

    #[test]
    fn usage_only_at_the_end_says_nothing_per_chunk() {
        let end = final_usage(8);
        let rec = run(&[(TOKEN, 5), (TOKEN, 6), (&end, 7), (DONE, 8)], None);
        assert_eq!(rec.output_tokens, 8);
        assert_eq!(rec.first_chunk_tokens, None);
        assert!(rec.chunk_tokens.is_empty());
        assert!(rec.tokens_per_chunk_estimated());
        // A text chunk without usage among counted ones: nothing is known per chunk either.
        let (a, c) = (counted("a", 4), counted("c", 8));
        let rec = run(&[(&a, 5), (TOKEN, 6), (&c, 7), (DONE, 8)], None);
        assert_eq!((rec.first_chunk_tokens, rec.chunk_tokens.len()), (None, 0));
        // Counts that go back are not cumulative: not trusted.
        let (a, b) = (counted("a", 4), counted("b", 2));
        let rec = run(&[(&a, 5), (&b, 6), (DONE, 8)], None);
        assert_eq!(rec.first_chunk_tokens, None);
    }

    #[test]
    fn transport_failure_wins() {
        let rec = run(&[(TOKEN, 5), (DONE, 6)], Some((ErrorClass::TimeoutIdle, "idle".into())));
        assert_eq!(rec.error, Some(ErrorClass::TimeoutIdle));
    }

    fn reasoning(text: &str) -> String {
        format!("data: {{\"choices\":[{{\"delta\":{{\"reasoning_content\":\"{text}\"}}}}]}}\n\n")
    }

    #[test]
    fn reasoning_then_answer_times_both_and_estimates_without_a_count() {
        let r = reasoning("think");
        let rec = run(
            &[
                (ROLE, 10),
                (&r, 20),
                (&r, 30),
                (TOKEN, 40),
                (LAST, 50),
                (USAGE, 51),
                (DONE, 52),
            ],
            None,
        );
        assert!(rec.ok);
        assert_eq!(rec.first_token_us, Some(20), "TTFT is the first token of any kind");
        assert_eq!((rec.first_reasoning_us, rec.first_answer_us), (Some(20), Some(40)));
        assert_eq!(rec.reasoning_tokens, Some(2));
        assert!(rec.reasoning_tokens_estimated);
        assert_eq!(rec.finish_reason.as_deref(), Some("length"));
        assert_eq!(rec.cached_tokens, None);
        assert_eq!(rec.answer_text, None, "text is kept only when asked");
    }

    #[test]
    fn the_servers_counts_win() {
        let r = reasoning("think");
        let usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":9,\"prompt_tokens_details\":{\"cached_tokens\":32},\"completion_tokens_details\":{\"reasoning_tokens\":6}}}\n\n";
        let rec = run(&[(&r, 20), (TOKEN, 40), (LAST, 50), (usage, 51), (DONE, 52)], None);
        assert_eq!((rec.reasoning_tokens, rec.reasoning_tokens_estimated), (Some(6), false));
        assert_eq!(rec.cached_tokens, Some(32));
        // No reasoning at all: nothing said.
        let rec = run(&[(TOKEN, 40), (LAST, 50), (DONE, 52)], None);
        assert_eq!((rec.reasoning_tokens, rec.first_reasoning_us), (None, None));
        assert_eq!(rec.first_answer_us, Some(40));
    }

    #[test]
    fn answer_text_is_kept_when_asked_and_bounded() {
        let mut rec = RequestRecord::default();
        let mut reader = StreamReader::keeping_text(true);
        for piece in [ROLE, &reasoning("not kept"), TOKEN, LAST, DONE] {
            reader.feed(piece.as_bytes(), 5, &mut rec);
        }
        reader.finalize(&mut rec, None, 0);
        assert_eq!(rec.answer_text.as_deref(), Some("xy"));
        let mut rec = RequestRecord::default();
        append_answer(&mut rec, &"a".repeat(ANSWER_TEXT_LIMIT - 1));
        append_answer(&mut rec, "éé");
        assert_eq!(
            rec.answer_text.as_ref().unwrap().len(),
            ANSWER_TEXT_LIMIT - 1,
            "no half character"
        );
    }
}
