//! The stress report: every request's outcome folded into counts, response-time percentiles,
//! the longest text that succeeded, the daemon's memory, and the first failures in detail;
//! written as JSON.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// How one request ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Audio, as expected.
    Ok,
    /// An error reply, as expected, naming the field at fault.
    ExpectedError,
    /// Anything else the daemon answered (with what was wrong).
    Unexpected(String),
    /// No frame for the timeout.
    Timeout,
    /// The daemon process is gone.
    Crash(String),
}

/// One finished request.
pub struct Record {
    pub index: usize,
    pub kind: &'static str,
    pub text: String,
    pub outcome: Outcome,
    pub ms: f64,
    /// Pieces checked in order (long texts with a handler that reports them).
    pub pieces: Option<usize>,
}

/// Memory of the daemon, in KiB (VmRSS), where it could be read.
#[derive(Default, Clone, Copy)]
pub struct Rss {
    pub start: Option<u64>,
    pub after_warmup: Option<u64>,
    pub end: Option<u64>,
    pub max: Option<u64>,
}

impl Rss {
    pub fn sample(&mut self, kb: Option<u64>) {
        if let Some(kb) = kb {
            self.max = Some(self.max.map_or(kb, |m| m.max(kb)));
        }
    }
}

/// Failures listed in full in the report (the counts cover all of them).
const LISTED_FAILURES: usize = 50;

#[derive(Default)]
pub struct Report {
    pub records: Vec<Record>,
    pub rss: Rss,
    pub planned: usize,
    pub daemon_pid: Option<u32>,
    pub max_new_tokens: u64,
    pub elapsed_s: f64,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    total: usize,
    ok: usize,
    expected: usize,
    unexpected: usize,
    timeouts: usize,
    crashes: usize,
}

impl Counts {
    fn add(&mut self, o: &Outcome) {
        self.total += 1;
        match o {
            Outcome::Ok => self.ok += 1,
            Outcome::ExpectedError => self.expected += 1,
            Outcome::Unexpected(_) => self.unexpected += 1,
            Outcome::Timeout => self.timeouts += 1,
            Outcome::Crash(_) => self.crashes += 1,
        }
    }
}

impl Report {
    fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.records {
            c.add(&r.outcome);
        }
        c
    }

    /// Whether the run found nothing wrong.
    pub fn clean(&self) -> bool {
        let c = self.counts();
        c.ok + c.expected == c.total && c.total == self.planned
    }

    pub fn to_json(&self) -> Value {
        let c = self.counts();
        let times: Vec<f64> = self.records.iter().map(|r| r.ms).collect();
        let longest = self
            .records
            .iter()
            .filter(|r| r.outcome == Outcome::Ok)
            .max_by_key(|r| r.text.chars().count());
        let mut by_kind: BTreeMap<&str, (Counts, Vec<f64>)> = BTreeMap::new();
        for r in &self.records {
            let e = by_kind.entry(r.kind).or_default();
            e.0.add(&r.outcome);
            e.1.push(r.ms);
        }
        let by_kind: serde_json::Map<String, Value> = by_kind
            .into_iter()
            .map(|(k, (c, t))| {
                let v = json!({
                    "total": c.total, "ok": c.ok, "expected_errors": c.expected,
                    "unexpected_errors": c.unexpected, "timeouts": c.timeouts,
                    "p50_ms": percentile(&t, 50.0), "max_ms": percentile(&t, 100.0),
                });
                (k.to_string(), v)
            })
            .collect();
        let failures: Vec<Value> = self
            .records
            .iter()
            .filter(|r| !matches!(r.outcome, Outcome::Ok | Outcome::ExpectedError))
            .take(LISTED_FAILURES)
            .map(|r| {
                let (what, detail) = match &r.outcome {
                    Outcome::Unexpected(m) => ("unexpected", m.clone()),
                    Outcome::Timeout => ("timeout", String::new()),
                    Outcome::Crash(m) => ("crash", m.clone()),
                    _ => unreachable!(),
                };
                json!({"index": r.index, "kind": r.kind, "text": cut(&r.text, 80),
                       "outcome": what, "detail": detail})
            })
            .collect();
        let growth = match (self.rss.start, self.rss.end) {
            (Some(a), Some(b)) => Some(b as i64 - a as i64),
            _ => None,
        };
        let growth_after_warmup = match (self.rss.after_warmup, self.rss.end) {
            (Some(a), Some(b)) => Some(b as i64 - a as i64),
            _ => None,
        };
        json!({
            "planned": self.planned,
            "total": c.total,
            "ok": c.ok,
            "expected_errors": c.expected,
            "unexpected_errors": c.unexpected,
            "timeouts": c.timeouts,
            "daemon_crashes": c.crashes,
            "not_run": self.planned - c.total,
            "success_rate": if c.total == 0 { 0.0 } else { (c.ok + c.expected) as f64 / c.total as f64 },
            "response_ms": {
                "p50": percentile(&times, 50.0),
                "p95": percentile(&times, 95.0),
                "max": percentile(&times, 100.0),
            },
            "longest_ok_text": longest.map(|r| json!({
                "chars": r.text.chars().count(),
                "words": r.text.split_whitespace().count(),
                "pieces": r.pieces,
                "kind": r.kind,
            })),
            "long_texts_checked_in_order": self.records.iter().filter(|r| r.pieces.is_some()).count(),
            "rss_kb": {
                "start": self.rss.start,
                "after_warmup": self.rss.after_warmup,
                "end": self.rss.end,
                "max": self.rss.max,
                "growth": growth,
                "growth_after_warmup": growth_after_warmup,
            },
            "daemon_pid": self.daemon_pid,
            "max_new_tokens": self.max_new_tokens,
            "elapsed_s": self.elapsed_s,
            "by_kind": by_kind,
            "failures": failures,
        })
    }

    /// One line for the terminal.
    pub fn summary(&self) -> String {
        let c = self.counts();
        let times: Vec<f64> = self.records.iter().map(|r| r.ms).collect();
        let rss = match (self.rss.start, self.rss.end) {
            (Some(a), Some(b)) => format!(
                ", RSS {:.1} -> {:.1} MiB",
                a as f64 / 1024.0,
                b as f64 / 1024.0
            ),
            _ => String::new(),
        };
        format!(
            "{} requests: {} ok, {} expected errors, {} unexpected, {} timeouts, {} crashes; \
             p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms{rss}",
            c.total,
            c.ok,
            c.expected,
            c.unexpected,
            c.timeouts,
            c.crashes,
            percentile(&times, 50.0).unwrap_or(0.0),
            percentile(&times, 95.0).unwrap_or(0.0),
            percentile(&times, 100.0).unwrap_or(0.0),
        )
    }
}

/// Nearest-rank percentile; `None` for no samples.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// At most `n` characters, control characters escaped.
pub fn cut(s: &str, n: usize) -> String {
    let mut out: String = s
        .chars()
        .take(n)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: usize, outcome: Outcome, ms: f64, text: &str) -> Record {
        Record {
            index: i,
            kind: "phrase",
            text: text.into(),
            outcome,
            ms,
            pieces: None,
        }
    }

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn counts_and_cleanliness() {
        let mut r = Report {
            planned: 3,
            ..Report::default()
        };
        r.records.push(rec(0, Outcome::Ok, 10.0, "short"));
        r.records.push(rec(1, Outcome::ExpectedError, 1.0, ""));
        r.records.push(rec(2, Outcome::Ok, 30.0, "the longest one"));
        assert!(r.clean());
        let j = r.to_json();
        assert_eq!(j["ok"], 2);
        assert_eq!(j["expected_errors"], 1);
        assert_eq!(j["longest_ok_text"]["chars"], 15);
        assert_eq!(j["response_ms"]["max"], 30.0);
        r.records
            .push(rec(3, Outcome::Unexpected("boom".into()), 5.0, "x"));
        r.planned = 4;
        assert!(!r.clean());
        let j = r.to_json();
        assert_eq!(j["unexpected_errors"], 1);
        assert_eq!(j["failures"][0]["detail"], "boom");
        // A run cut short by a crash is not clean either.
        r.records.pop();
        assert!(!r.clean());
    }

    #[test]
    fn cut_escapes_controls() {
        assert_eq!(cut("a\u{7}b", 10), "a\\u{7}b");
        assert_eq!(cut("abcdef", 3), "abc…");
    }
}
