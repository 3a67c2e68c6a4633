//! Value parsers: each says in one line what was wrong and what is expected.

use std::time::Duration;

fn whole(s: &str, what: &str, min: u64, max: u64) -> Result<u64, String> {
    let v: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("{what} must be a whole number, got `{s}`"))?;
    if v < min as i128 {
        return Err(format!("{what} must be at least {min}, got {v}"));
    }
    if v > max as i128 {
        return Err(format!("{what} must be at most {max}, got {v}"));
    }
    Ok(v as u64)
}

/// Concurrency: 1 ..= 1,000,000.
pub fn concurrency(s: &str) -> Result<u32, String> {
    whole(s, "concurrency", 1, 1_000_000).map(|v| v as u32)
}

/// A count of at least 1 (turns, images per request, prefix groups).
pub fn count(s: &str) -> Result<u32, String> {
    whole(s, "the number", 1, 1_000_000).map(|v| v as u32)
}

pub fn step(s: &str) -> Result<u32, String> {
    whole(s, "the concurrency step", 1, 1_000_000).map(|v| v as u32)
}

pub fn prompt_length(s: &str) -> Result<usize, String> {
    whole(s, "the prompt length (characters)", 1, 100_000_000).map(|v| v as usize)
}

pub fn tokens(s: &str) -> Result<u32, String> {
    whole(s, "the number of tokens to generate", 1, 10_000_000).map(|v| v as u32)
}

pub fn threads(s: &str) -> Result<usize, String> {
    whole(s, "the number of threads", 1, 1024).map(|v| v as usize)
}

pub fn hours(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("hours must be a number like 8 or 0.5, got `{s}` (for 90s or 30m use --duration)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("hours must be 0 (step mode) or more, got {s}"));
    }
    if v > 24.0 * 365.0 {
        return Err(format!("{s} hours is more than a year"));
    }
    Ok(v)
}

/// `90s`, `30m`, `8h`, `1h30m`, `500ms`, or a plain number of seconds. Must be more than zero.
pub fn duration(s: &str) -> Result<Duration, String> {
    let d = duration_or_zero(s)?;
    if d.is_zero() {
        return Err(format!("the time must be more than zero, got `{s}`"));
    }
    Ok(d)
}

pub fn duration_or_zero(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        if (0.0..1e9).contains(&secs) {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("the time must be zero or more, got `{s}`"));
    }
    humantime::parse_duration(t).map_err(|_| format!("`{s}` is not a time; write it like 90s, 30m, 8h or 1h30m"))
}

/// A number of requests: 1 ..= 10^12.
pub fn requests(s: &str) -> Result<u64, String> {
    whole(s, "the number of requests", 1, 1_000_000_000_000)
}

/// The lowest and highest request rates accepted (a rate of 1e-20 would overflow the clock).
pub const MIN_RATE: f64 = 0.001;
pub const MAX_RATE: f64 = 1e7;

/// A load for `capacity --min/--max`: a rate or a concurrency within the accepted range.
pub fn load_value(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (MIN_RATE..=MAX_RATE).contains(&v) => Ok(v),
        _ => Err(format!(
            "expected a load from 0.001 to 10000000 (requests/s or a concurrency), got `{s}`"
        )),
    }
}

/// The rates of `--rate` (one value to clap, so a comma list is one argument).
#[derive(Debug, Clone, PartialEq)]
pub struct Rates(pub Vec<f64>);

/// `--rate 2,4,8.5`: request rates, each above zero.
pub fn rates(s: &str) -> Result<Rates, String> {
    let mut out = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        match item.parse::<f64>() {
            Ok(v) if (MIN_RATE..=MAX_RATE).contains(&v) => out.push(v),
            _ => {
                return Err(format!(
                    "`{item}` is not a request rate; give requests per second from 0.001 to 10000000, like 2 or 0.5, and separate a sweep with commas (2,4,8)"
                ))
            }
        }
    }
    Ok(Rates(out))
}

/// `5%` or `0.05` → 0.05; must be above 0 and at most 100%.
pub fn percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    };
    match value {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!(
            "expected a share like 5% or 0.05 (above 0, at most 100%), got `{s}`"
        )),
    }
}

pub fn positive_f64(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a number above zero, got `{s}`")),
    }
}

pub fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("expected a number of zero or more, got `{s}`")),
    }
}

pub fn fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "expected a fraction between 0 and 1 (e.g. 0.2 for 20%), got `{s}`"
        )),
    }
}

/// Body fields llm-bench builds itself: overriding them would break what a test measures.
const RESERVED_BODY_KEYS: [(&str, &str); 4] = [
    ("model", "use --model"),
    ("messages", "the tests build the prompt"),
    ("prompt", "the tests build the prompt"),
    ("stream", "llm-bench measures streamed responses"),
];

/// `--extra-body`: a JSON object merged into every request body.
pub fn json_object(s: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let value: serde_json::Value = serde_json::from_str(s)
        .map_err(|e| format!("`{s}` is not valid JSON ({e}); write an object like '{{\"cache_prompt\": false}}'"))?;
    let serde_json::Value::Object(map) = value else {
        return Err(format!(
            "expected a JSON object like '{{\"cache_prompt\": false}}', got `{s}`"
        ));
    };
    for (key, why) in RESERVED_BODY_KEYS {
        if map.contains_key(key) {
            return Err(format!("`{key}` cannot be set here: {why}"));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_body_objects() {
        assert_eq!(
            json_object(r#"{"cache_prompt": false}"#).unwrap()["cache_prompt"],
            false
        );
        assert!(json_object("[1]").unwrap_err().contains("JSON object"));
        assert!(json_object("{oops").unwrap_err().contains("not valid JSON"));
        assert!(json_object(r#"{"stream": false}"#).unwrap_err().contains("streamed"));
    }

    #[test]
    fn numbers() {
        assert_eq!(concurrency("10"), Ok(10));
        assert!(concurrency("0").unwrap_err().contains("at least 1"));
        assert!(concurrency("-5").unwrap_err().contains("at least 1"));
        assert!(concurrency("ten").unwrap_err().contains("whole number"));
        assert!(concurrency("2.5").unwrap_err().contains("whole number"));
        assert!(step("0").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(duration("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(duration("0s").is_err());
        assert!(duration("-1").is_err());
        assert!(duration("8 parsecs").unwrap_err().contains("not a time"));
        assert_eq!(duration_or_zero("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rates_and_percents() {
        assert_eq!(rates("2,4, 8.5"), Ok(Rates(vec![2.0, 4.0, 8.5])));
        for bad in ["0", "-1", "x", "2,,4", "inf", "1e-20", "1e9"] {
            assert!(rates(bad).unwrap_err().contains("not a request rate"), "{bad}");
        }
        assert_eq!(percent("5%"), Ok(0.05));
        assert_eq!(percent("0.9"), Ok(0.9));
        for bad in ["0%", "150%", "x", "-5%"] {
            assert!(percent(bad).is_err(), "{bad}");
        }
        assert!(requests("0").is_err());
    }

    #[test]
    fn hours_and_fractions() {
        assert_eq!(hours("0.5"), Ok(0.5));
        assert!(hours("-1").is_err());
        assert!(hours("30m").unwrap_err().contains("--duration"));
        assert_eq!(fraction("0.2"), Ok(0.2));
        assert!(fraction("20").is_err());
        assert!(positive_f64("0").is_err());
    }
}
