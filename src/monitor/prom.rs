//! A small reader of the Prometheus text exposition format (0.0.4), tolerant of OpenMetrics
//! text (`# EOF`, `# UNIT`, `_created` series, exemplars, float-second timestamps).
//!
//! It reads what a scrape needs and never fails: a line it cannot read is counted and skipped,
//! so one odd line from a server does not cost the whole scrape. Work is linear in the input.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line carries a timestamp.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// canonical `name{a="b",c="d"}` (labels sorted, values re-escaped), `name` without labels
    pub fn key(&self) -> String {
        if self.labels.is_empty() {
            return self.name.clone();
        }
        let mut labels: Vec<&(String, String)> = self.labels.iter().collect();
        labels.sort();
        let mut out = String::with_capacity(self.name.len() + 16 * labels.len());
        out.push_str(&self.name);
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub help: Option<String>,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub families: Vec<Family>,
    /// lines that could not be read (skipped)
    pub bad_lines: usize,
    /// the first of them: 1-based line number and why, short
    pub first_error: Option<String>,
}

impl Parsed {
    /// Does this look like Prometheus text at all? (at least one sample read, and not mostly
    /// bad lines; an HTML page or JSON is not)
    pub fn is_prometheus(&self) -> bool {
        let samples: usize = self.families.iter().map(|f| f.samples.len()).sum();
        samples > 0 && self.bad_lines <= samples
    }

    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }
}

pub fn parse(text: &str) -> Parsed {
    let mut b = Builder::default();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r');
        if line.is_empty() {
            continue;
        }
        let result = if let Some(comment) = line.strip_prefix('#') {
            b.comment(comment)
        } else {
            parse_sample(line).map(|s| b.sample(s))
        };
        if let Err(why) = result {
            b.out.bad_lines += 1;
            if b.out.first_error.is_none() {
                b.out.first_error = Some(format!("line {}: {why}", i + 1));
            }
        }
    }
    b.out
}

/// Where a sample name goes: the family's index, and whether a TYPE/HELP line (or the family's
/// own first sample) named it exactly, which a suffix claim (`x_sum` for histogram `x`) never
/// overrides.
#[derive(Clone, Copy)]
struct Owner {
    family: usize,
    exact: bool,
}

#[derive(Default)]
struct Builder {
    out: Parsed,
    owners: HashMap<String, Owner>,
    /// Per family: has a TYPE line set its kind (a later TYPE for it is a duplicate, ignored).
    typed: Vec<bool>,
}

impl Builder {
    fn comment(&mut self, rest: &str) -> Result<(), &'static str> {
        let rest = rest.trim_start_matches([' ', '\t']);
        let (word, after) = split_word(rest);
        match word {
            "TYPE" => {
                let (name, after) = split_word(after);
                let (kind, _) = split_word(after);
                if !valid_name(name) {
                    return Err("bad TYPE name");
                }
                let kind = parse_kind(kind).ok_or("unknown TYPE")?;
                self.declare_type(name, kind);
                Ok(())
            }
            "HELP" => {
                let (name, after) = split_word(after);
                if !valid_name(name) {
                    return Err("bad HELP name");
                }
                let idx = self.declare(name);
                let fam = &mut self.out.families[idx];
                if fam.help.is_none() {
                    fam.help = Some(unescape_help(after));
                }
                Ok(())
            }
            // `# EOF`, `# UNIT` and free comments carry nothing we use.
            _ => Ok(()),
        }
    }

    /// The family declared under exactly `name`, created (untyped, empty) if there is none.
    fn declare(&mut self, name: &str) -> usize {
        if let Some(o) = self.owners.get(name) {
            if o.exact {
                return o.family;
            }
        }
        let idx = self.out.families.len();
        self.out.families.push(Family {
            name: name.to_string(),
            kind: Kind::Untyped,
            help: None,
            samples: Vec::new(),
        });
        self.typed.push(false);
        self.owners.insert(
            name.to_string(),
            Owner {
                family: idx,
                exact: true,
            },
        );
        idx
    }

    fn declare_type(&mut self, name: &str, kind: Kind) {
        let idx = self.declare(name);
        if self.typed[idx] {
            return; // the first TYPE line wins
        }
        self.typed[idx] = true;
        self.out.families[idx].kind = kind;
        let suffixes: &[&str] = match kind {
            Kind::Histogram => &["_bucket", "_sum", "_count", "_created", "_gsum", "_gcount"],
            Kind::Summary => &["_sum", "_count", "_created"],
            // OpenMetrics: `# TYPE x counter` with samples `x_total` and `x_created`.
            Kind::Counter => &["_total", "_created"],
            Kind::Gauge => &["_info"],
            Kind::Untyped => &[],
        };
        for suffix in suffixes {
            let owned = format!("{name}{suffix}");
            self.owners.entry(owned).or_insert(Owner {
                family: idx,
                exact: false,
            });
        }
    }

    fn sample(&mut self, s: Sample) {
        let idx = match self.owners.get(s.name.as_str()) {
            Some(o) => o.family,
            None => self.declare(&s.name),
        };
        self.out.families[idx].samples.push(s);
    }
}

fn parse_kind(word: &str) -> Option<Kind> {
    Some(match word {
        "counter" => Kind::Counter,
        "gauge" | "info" | "stateset" => Kind::Gauge,
        "histogram" | "gaugehistogram" => Kind::Histogram,
        "summary" => Kind::Summary,
        "untyped" | "unknown" => Kind::Untyped,
        _ => return None,
    })
}

/// The first whitespace-separated word and the rest after the whitespace that follows it.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_name_char(b: u8) -> bool {
    is_name_start(b) || b.is_ascii_digit()
}

fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && is_name_start(b[0]) && b.iter().all(|&c| is_name_char(c))
}

fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            // Not an escape the format defines: keep it as written.
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `name{labels} value [timestamp] [# exemplar]`
fn parse_sample(line: &str) -> Result<Sample, &'static str> {
    let bytes = line.as_bytes();
    let mut pos = 0;
    if bytes.first().is_none_or(|&b| !is_name_start(b)) {
        return Err("expected a metric name");
    }
    while pos < bytes.len() && is_name_char(bytes[pos]) {
        pos += 1;
    }
    if !matches!(bytes.get(pos), None | Some(b' ' | b'\t' | b'{')) {
        return Err("bad metric name");
    }
    let name = line[..pos].to_string();
    pos = skip_ws(bytes, pos);
    let mut labels = Vec::new();
    if bytes.get(pos) == Some(&b'{') {
        pos = parse_labels(line, pos + 1, &mut labels)?;
    }
    // An OpenMetrics exemplar (` # {...} v`) ends what we read.
    let mut words = line[pos..]
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .take_while(|w| *w != "#");
    let value = parse_value(words.next().ok_or("missing value")?)?;
    let timestamp_ms = words.next().map(parse_timestamp).transpose()?;
    if words.next().is_some() {
        return Err("unexpected text after the value");
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && (bytes[pos] == b' ' || bytes[pos] == b'\t') {
        pos += 1;
    }
    pos
}

/// Reads `a="b",c="d"}` from `pos` (just after `{`); returns the index after `}`.
fn parse_labels(line: &str, mut pos: usize, labels: &mut Vec<(String, String)>) -> Result<usize, &'static str> {
    let bytes = line.as_bytes();
    loop {
        pos = skip_ws(bytes, pos);
        match bytes.get(pos) {
            None => return Err("unclosed label set"),
            Some(b'}') => return Ok(pos + 1),
            Some(&b) if is_name_start(b) && b != b':' => {}
            Some(_) => return Err("bad label name"),
        }
        let start = pos;
        while pos < bytes.len() && is_name_char(bytes[pos]) && bytes[pos] != b':' {
            pos += 1;
        }
        let key = line[start..pos].to_string();
        pos = skip_ws(bytes, pos);
        if bytes.get(pos) != Some(&b'=') {
            return Err("expected '=' after a label name");
        }
        pos = skip_ws(bytes, pos + 1);
        if bytes.get(pos) != Some(&b'"') {
            return Err("expected a quoted label value");
        }
        let (value, next) = parse_quoted(bytes, pos + 1)?;
        labels.push((key, value));
        pos = skip_ws(bytes, next);
        match bytes.get(pos) {
            Some(b',') => pos += 1,
            Some(b'}') => return Ok(pos + 1),
            _ => return Err("expected ',' or '}' after a label"),
        }
    }
}

/// A label value from just after its opening quote; returns it and the index after the
/// closing quote.
fn parse_quoted(bytes: &[u8], mut pos: usize) -> Result<(String, usize), &'static str> {
    let mut out = Vec::new();
    while pos < bytes.len() {
        match bytes[pos] {
            b'"' => return Ok((String::from_utf8_lossy(&out).into_owned(), pos + 1)),
            b'\\' => {
                match bytes.get(pos + 1) {
                    Some(b'\\') => out.push(b'\\'),
                    Some(b'"') => out.push(b'"'),
                    Some(b'n') => out.push(b'\n'),
                    // Not an escape the format defines: keep it as written.
                    Some(&other) => out.extend_from_slice(&[b'\\', other]),
                    None => return Err("unterminated label value"),
                }
                pos += 2;
            }
            b => {
                out.push(b);
                pos += 1;
            }
        }
    }
    Err("unterminated label value")
}

fn parse_value(word: &str) -> Result<f64, &'static str> {
    // Rust's parser reads NaN, Inf, +Inf, -Inf and exponents, any case, as Go's does.
    word.parse::<f64>().map_err(|_| "bad value")
}

/// 0.0.4 writes integer milliseconds; OpenMetrics writes seconds, possibly fractional.
fn parse_timestamp(word: &str) -> Result<i64, &'static str> {
    if let Ok(ms) = word.parse::<i64>() {
        return Ok(ms);
    }
    match word.parse::<f64>() {
        Ok(s) if s.is_finite() && s.abs() < 9.0e15 => Ok((s * 1000.0).round() as i64),
        _ => Err("bad timestamp"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Sample {
        let p = parse(text);
        assert_eq!(p.bad_lines, 0, "{:?}", p.first_error);
        let mut all: Vec<Sample> = p.families.into_iter().flat_map(|f| f.samples).collect();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn values_read_like_prometheus() {
        let cases: &[(&str, f64)] = &[
            ("1", 1.0),
            ("-2.5", -2.5),
            ("1e3", 1000.0),
            ("1.5E-3", 0.0015),
            ("+Inf", f64::INFINITY),
            ("Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("+3", 3.0),
            ("0.0", 0.0),
        ];
        for (text, want) in cases {
            let s = one(&format!("m {text}"));
            assert_eq!(s.value, *want, "{text}");
        }
        assert!(one("m NaN").value.is_nan());
        assert!(one("m nan").value.is_nan());
    }

    #[test]
    fn timestamps_both_ways() {
        let cases: &[(&str, Option<i64>)] = &[
            ("m 1", None),
            ("m 1 1700000000123", Some(1_700_000_000_123)),
            ("m 1 -5", Some(-5)),
            // OpenMetrics: seconds.
            ("m 1 1520879607.789", Some(1_520_879_607_789)),
            // An exemplar after the value is not a timestamp.
            ("m_total 1 # {trace_id=\"a\"} 0.5", None),
            ("m_total 1 17 # {trace_id=\"a\"} 0.5 18", Some(17)),
        ];
        for (text, want) in cases {
            assert_eq!(one(text).timestamp_ms, *want, "{text}");
        }
    }

    #[test]
    fn label_values_with_escapes_and_delimiters() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            (r#"m{a="b"} 1"#, &[("a", "b")]),
            (r#"m{a="b",} 1"#, &[("a", "b")]),
            (r#"m{ a = "b" , c="d" , } 1"#, &[("a", "b"), ("c", "d")]),
            (r#"m{a="x,y"} 1"#, &[("a", "x,y")]),
            (r#"m{a="say \"hi\""} 1"#, &[("a", "say \"hi\"")]),
            (r#"m{a="{}={},"} 1"#, &[("a", "{}={},")]),
            (r#"m{a="back\\slash"} 1"#, &[("a", "back\\slash")]),
            (r#"m{a="two\nlines"} 1"#, &[("a", "two\nlines")]),
            (r#"m{a="tab\t"} 1"#, &[("a", "tab\\t")]),
            (r#"m{a=""} 1"#, &[("a", "")]),
            (r#"m{a="ünï"} 1"#, &[("a", "ünï")]),
            (r#"m{} 1"#, &[]),
            (r#"m{a="b"}1"#, &[("a", "b")]),
        ];
        for (text, want) in cases {
            assert_eq!(one(text).labels, labels(want), "{text}");
        }
    }

    #[test]
    fn key_is_canonical() {
        let a = one(r#"m{z="1",a="q\"x\\y\nz"} 1"#);
        assert_eq!(a.key(), r#"m{a="q\"x\\y\nz",z="1"}"#);
        let b = one(r#"m{ a="q\"x\\y\nz", z="1", } 2"#);
        assert_eq!(a.key(), b.key());
        assert_eq!(one("plain 1").key(), "plain");
        assert_eq!(a.label("z"), Some("1"));
        assert_eq!(a.label("nope"), None);
    }

    #[test]
    fn bad_lines_are_counted_and_skipped() {
        let cases: &[(&str, &str)] = &[
            ("m", "missing value"),
            ("m abc", "bad value"),
            ("m 1 2 3", "unexpected text"),
            ("m 1 x", "bad timestamp"),
            ("m{a=\"b\" 1", "expected ',' or '}'"),
            ("m{a=\"b 1", "unterminated"),
            ("m{a=b} 1", "quoted label value"),
            ("m{1a=\"b\"} 1", "bad label name"),
            ("m{a} 1", "expected '='"),
            ("9m 1", "metric name"),
            ("m-1 2", "bad metric name"),
            ("{\"json\": 1}", "metric name"),
            ("# TYPE m bogus", "unknown TYPE"),
            ("# TYPE 1m gauge", "bad TYPE name"),
        ];
        for (text, why) in cases {
            let p = parse(&format!("ok 1\n{text}\nok 2\n"));
            assert_eq!(p.bad_lines, 1, "{text}");
            let err = p.first_error.clone().unwrap();
            assert!(err.starts_with("line 2: "), "{err}");
            assert!(err.contains(why), "{text}: {err}");
            assert_eq!(p.family("ok").unwrap().samples.len(), 2);
        }
    }

    #[test]
    fn names_with_colons_help_and_types() {
        let p = parse(
            "# HELP vllm:num_requests_running Number of requests \\\\ in\\nbatches.\n\
             # TYPE vllm:num_requests_running gauge\n\
             vllm:num_requests_running{model_name=\"m\",engine=\"0\"} 3.0\n",
        );
        let f = p.family("vllm:num_requests_running").unwrap();
        assert_eq!(f.kind, Kind::Gauge);
        assert_eq!(f.help.as_deref(), Some("Number of requests \\ in\nbatches."));
        assert_eq!(f.samples[0].value, 3.0);
        assert_eq!(f.samples[0].label("engine"), Some("0"));
    }

    #[test]
    fn histogram_owns_its_series_in_input_order() {
        let p = parse(
            "# TYPE x histogram\n\
             x_bucket{le=\"0.1\"} 1\n\
             x_bucket{le=\"+Inf\"} 3\n\
             x_sum 0.7\n\
             x_count 3\n\
             x_created 1700000000\n\
             # TYPE s summary\n\
             s{quantile=\"0.5\"} 1\n\
             s_sum 2\n\
             s_count 4\n",
        );
        assert_eq!(p.families.len(), 2);
        let x = p.family("x").unwrap();
        assert_eq!(x.kind, Kind::Histogram);
        let names: Vec<&str> = x.samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["x_bucket", "x_bucket", "x_sum", "x_count", "x_created"]);
        assert_eq!(x.samples[1].label("le"), Some("+Inf"));
        let s = p.family("s").unwrap();
        assert_eq!(s.kind, Kind::Summary);
        assert_eq!(s.samples.len(), 3);
    }

    #[test]
    fn counter_total_both_ways() {
        // Prometheus 0.0.4 (prometheus_client): the family is declared with `_total`, and
        // `_created` comes as its own gauge.
        let old = parse(
            "# HELP c_total Tokens.\n# TYPE c_total counter\nc_total 5\n\
             # TYPE c_created gauge\nc_created 1.7e9\n",
        );
        assert_eq!(old.family("c_total").unwrap().kind, Kind::Counter);
        assert_eq!(old.family("c_total").unwrap().samples[0].value, 5.0);
        assert_eq!(old.family("c_created").unwrap().kind, Kind::Gauge);
        // OpenMetrics: declared without it, samples `c_total` and `c_created`.
        let om = parse("# TYPE c counter\n# UNIT c tokens\n# HELP c Tokens.\nc_total 5\nc_created 1.7e9\n# EOF\n");
        assert_eq!(om.families.len(), 1);
        let c = om.family("c").unwrap();
        assert_eq!(c.kind, Kind::Counter);
        assert_eq!(c.help.as_deref(), Some("Tokens."));
        assert_eq!(c.samples.len(), 2);
        assert_eq!(c.samples[0].name, "c_total");
        assert_eq!(om.bad_lines, 0);
    }

    #[test]
    fn untyped_samples_get_their_own_family() {
        let p = parse("a_total 1\nb{x=\"1\"} 2\nb{x=\"2\"} 3\na_total{y=\"z\"} 4\n");
        assert_eq!(p.families.len(), 2);
        let a = p.family("a_total").unwrap();
        assert_eq!(a.kind, Kind::Untyped);
        assert_eq!(a.samples.len(), 2);
        assert_eq!(p.family("b").unwrap().samples.len(), 2);
    }

    #[test]
    fn duplicate_type_lines_keep_the_first() {
        let p = parse("# TYPE g gauge\ng 1\n# TYPE g counter\n# HELP g first\n# HELP g second\ng 2\n");
        assert_eq!(p.families.len(), 1);
        let g = p.family("g").unwrap();
        assert_eq!(g.kind, Kind::Gauge);
        assert_eq!(g.help.as_deref(), Some("first"));
        assert_eq!(g.samples.len(), 2);
        assert_eq!(p.bad_lines, 0);
    }

    #[test]
    fn help_before_type_and_explicit_type_beats_a_suffix() {
        let p = parse("# HELP h help\n# TYPE h histogram\n# TYPE h_count gauge\nh_count 3\nh_sum 1\n");
        assert_eq!(p.family("h").unwrap().kind, Kind::Histogram);
        assert_eq!(p.family("h").unwrap().samples.len(), 1);
        assert_eq!(p.family("h_count").unwrap().samples.len(), 1);
    }

    #[test]
    fn blank_lines_crlf_and_whitespace() {
        let p = parse("\r\n  \n# TYPE g gauge\r\n\tg{a=\"b\"}   7  \r\n\r\n  g 8\t\r\n");
        assert_eq!(p.bad_lines, 0, "{:?}", p.first_error);
        let g = p.family("g").unwrap();
        assert_eq!(g.kind, Kind::Gauge);
        assert_eq!(g.samples.len(), 2);
        assert_eq!(g.samples[0].labels, labels(&[("a", "b")]));
        assert_eq!(g.samples[1].value, 8.0);
    }

    #[test]
    fn html_and_json_are_not_prometheus() {
        let html = "<!DOCTYPE html>\n<html>\n<head><title>404 Not Found</title></head>\n\
                    <body>\n<h1>Not Found</h1>\n</body>\n</html>\n";
        assert!(!parse(html).is_prometheus());
        let json = "{\n  \"object\": \"list\",\n  \"data\": [1, 2]\n}\n";
        assert!(!parse(json).is_prometheus());
        assert!(!parse("").is_prometheus());
        assert!(!parse("# just a comment\n").is_prometheus());
        assert!(parse("# TYPE up gauge\nup 1\n").is_prometheus());
        // One odd line among good ones is still Prometheus.
        assert!(parse("a 1\nb 2\n<oops>\n").is_prometheus());
    }

    #[test]
    fn garbage_never_panics() {
        // A seeded xorshift: random bytes, then random lines from the format's own pieces.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300 {
            let len = (next() % 400) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            let p = parse(&text);
            assert!(p.bad_lines <= text.split('\n').count());
        }
        const PIECES: &[&str] = &[
            "m",
            "x_bucket",
            "vllm:a",
            "{",
            "}",
            "\"",
            "\\",
            "=",
            ",",
            " ",
            "\t",
            "#",
            "# TYPE ",
            "# HELP ",
            "histogram",
            "counter",
            "le",
            "+Inf",
            "NaN",
            "1e",
            "-",
            "1.5",
            "\n",
            "\r\n",
            "ü",
            "_total",
            "_sum",
            "\\\"",
            "\\n",
            "# EOF",
            "99999999999999999999",
        ];
        for _ in 0..2000 {
            let n = (next() % 24) as usize;
            let text: String = (0..n)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let p = parse(&text);
            let samples: usize = p.families.iter().map(|f| f.samples.len()).sum();
            assert!(samples + p.bad_lines <= text.split('\n').count(), "{text:?}");
            for s in p.families.iter().flat_map(|f| &f.samples) {
                let _ = s.key();
            }
        }
    }

    #[test]
    fn a_huge_input_parses_and_counts_right() {
        let mut text = String::with_capacity(6 << 20);
        text.push_str("# TYPE big counter\n# TYPE lat histogram\n");
        let mut n = 0usize;
        while text.len() < 5 << 20 {
            text.push_str(&format!(
                "big_total{{model_name=\"m\",engine=\"{}\"}} {n}\nlat_bucket{{le=\"{}\"}} {n}\n",
                n % 8,
                n % 5
            ));
            n += 1;
        }
        let p = parse(&text);
        assert_eq!(p.bad_lines, 0);
        assert_eq!(p.families.len(), 2);
        assert_eq!(p.family("big").unwrap().samples.len(), n);
        assert_eq!(p.family("lat").unwrap().samples.len(), n);
        assert_eq!(p.family("big").unwrap().samples[n - 1].value, (n - 1) as f64);
    }
}
