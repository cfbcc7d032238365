//! The stress corpus: a deterministic sequence of `generate` requests covering short phrases,
//! sentences, paragraphs, long pages, digits, dates, URLs, emoji and symbols, control
//! characters, empty and whitespace-only text, mixed languages, one text repeated many times
//! in a row, and invalid option values. Each case says what the daemon must answer: audio, or
//! an error whose message names the offending field.

use serde_json::{json, Map, Value};

/// What a case must get back.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// `"status": "ok"` with audio written.
    Audio,
    /// `"status": "error"` with a message containing this (the field at fault).
    Error(&'static str),
}

/// One request of the run.
#[derive(Clone, Debug)]
pub struct Case {
    /// The corpus class ("phrase", "page", "invalid_option", ...).
    pub kind: &'static str,
    pub text: String,
    /// Top-level request fields beyond `action`, `text` and `output` (language, speaker, ...).
    pub fields: Map<String, Value>,
    /// Extra or replaced `options` (the token cap and seed are added by the runner).
    pub options: Map<String, Value>,
    /// `Some`: send this `output` instead of a file in the run's directory.
    pub output: Option<String>,
    pub expect: Expect,
}

impl Case {
    fn audio(kind: &'static str, text: impl Into<String>) -> Case {
        Case {
            kind,
            text: text.into(),
            fields: Map::new(),
            options: Map::new(),
            output: None,
            expect: Expect::Audio,
        }
    }
}

/// The order classes come in; every class appears in any run of at least this many requests
/// (plus the repeated block).
const SCHEDULE: &[&str] = &[
    "phrase",
    "sentence",
    "digits",
    "paragraph",
    "empty",
    "dates",
    "phrase",
    "urls",
    "emoji",
    "invalid_option",
    "sentence",
    "control",
    "whitespace",
    "mixed",
    "phrase",
    "page",
    "sentence",
    "invalid_option",
    "digits",
    "paragraph",
];

/// Length of the "same text again and again" block: 100 in a full run, a tenth of shorter runs.
pub fn repeat_len(count: usize) -> usize {
    (count / 10).clamp(1, 100).min(count)
}

/// The `count` cases of a run, deterministic for a given `seed`.
pub fn build(count: usize, seed: u64) -> Vec<Case> {
    let mut rng = Rng::new(seed);
    let repeat = repeat_len(count);
    let repeat_at = (count - repeat) / 2;
    let repeated = Case {
        kind: "repeat",
        ..Case::audio("", sentence(&mut rng, 12))
    };
    let mut out = Vec::with_capacity(count);
    let mut slot = 0;
    while out.len() < count {
        if out.len() == repeat_at {
            out.extend(std::iter::repeat_n(repeated.clone(), repeat));
            continue;
        }
        let round = slot / SCHEDULE.len();
        let kind = match SCHEDULE[slot % SCHEDULE.len()] {
            // Pages cost as much as dozens of other requests: every other round only.
            "page" if round % 2 == 1 => "sentence",
            k => k,
        };
        out.push(case(kind, round, &mut rng));
        slot += 1;
    }
    out.truncate(count);
    out
}

fn case(kind: &'static str, round: usize, rng: &mut Rng) -> Case {
    match kind {
        "phrase" => {
            let n = 1 + rng.below(5);
            Case::audio(kind, words(rng, n))
        }
        "sentence" => {
            let n = 10 + rng.below(21);
            Case::audio(kind, sentence(rng, n))
        }
        "paragraph" => {
            let n = 50 + rng.below(151);
            Case::audio(kind, paragraph(rng, n))
        }
        "page" => {
            let n = 500 + rng.below(101);
            Case::audio(kind, paragraph(rng, n))
        }
        "digits" => Case::audio(kind, pick(rng, DIGITS)),
        "dates" => Case::audio(kind, pick(rng, DATES)),
        "urls" => Case::audio(kind, pick(rng, URLS)),
        "emoji" => Case::audio(kind, pick(rng, SYMBOLS)),
        "control" => Case::audio(kind, pick(rng, CONTROL)),
        "mixed" => Case::audio(kind, pick(rng, MIXED)),
        "empty" => Case {
            expect: Expect::Error("text"),
            ..Case::audio(kind, "")
        },
        "whitespace" => {
            let t = pick(rng, &["   ", "\n\n", "\t \r\n ", "\u{a0}\u{2003}"]);
            Case {
                expect: Expect::Error("text"),
                ..Case::audio(kind, t)
            }
        }
        "invalid_option" => invalid_option(round, rng),
        other => unreachable!("no corpus class {other}"),
    }
}

/// Option values the daemon must refuse, each naming the field at fault.
fn invalid_option(round: usize, rng: &mut Rng) -> Case {
    let text = sentence(rng, 6);
    let mut c = Case::audio("invalid_option", text);
    let opt = |c: &mut Case, k: &str, v: Value| {
        c.options.insert(k.into(), v);
    };
    let needle = match round % 13 {
        0 => {
            opt(&mut c, "temperature", json!("hot"));
            "temperature"
        }
        1 => {
            opt(&mut c, "top_k", json!(-5));
            "top_k"
        }
        2 => {
            opt(&mut c, "max_new_tokens", json!(0));
            "max_new_tokens"
        }
        3 => {
            opt(&mut c, "top_p", json!(5.0));
            "top_p"
        }
        4 => {
            opt(&mut c, "seed", json!(-1));
            "seed"
        }
        5 => {
            opt(&mut c, "greedy", json!("yes"));
            "greedy"
        }
        6 => {
            opt(&mut c, "ref_audio", json!("voice.wav"));
            "ref_audio"
        }
        7 => {
            c.fields.insert("language".into(), json!("klingon"));
            "language"
        }
        8 => {
            c.fields
                .insert("speaker".into(), json!("nobody-by-this-name"));
            "speaker"
        }
        9 => {
            c.output = Some("relative/out.wav".into());
            "output"
        }
        10 => {
            opt(&mut c, "temperature", json!(1e9));
            "temperature"
        }
        11 => {
            opt(&mut c, "repetition_penalty", json!(-2.0));
            "repetition_penalty"
        }
        _ => {
            opt(&mut c, "max_new_tokens", json!(1.5));
            "max_new_tokens"
        }
    };
    c.expect = Expect::Error(needle);
    c
}

const WORDS: &[&str] = &[
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "morning",
    "light",
    "falls",
    "across",
    "quiet",
    "river",
    "people",
    "walk",
    "slowly",
    "through",
    "old",
    "town",
    "market",
    "where",
    "bread",
    "and",
    "coffee",
    "smell",
    "warm",
    "children",
    "laugh",
    "near",
    "fountain",
    "while",
    "music",
    "plays",
    "from",
    "open",
    "window",
    "above",
    "street",
    "every",
    "day",
    "brings",
    "something",
    "new",
    "to",
    "learn",
    "about",
    "world",
    "its",
    "stories",
    "we",
    "remember",
    "small",
    "things",
    "that",
    "matter",
    "most",
    "in",
    "end",
    "voice",
    "speaks",
    "clearly",
    "listen",
    "carefully",
    "after",
    "rain",
    "garden",
    "grows",
    "green",
    "bright",
];

const DIGITS: &[&str] = &[
    "Call 555-0123 before 10:45, or dial +44 20 7946 0958.",
    "Order #98765 costs $1,234.56, a 12.5% discount on 1,411.",
    "3.14159 26535 89793 23846 26433 83279",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000 1000000",
    "The ratio was 3:2, the score 21-17, and the temperature -4.5°C.",
];

const DATES: &[&str] = &[
    "The meeting is on 2026-12-03 at 14:30 UTC.",
    "Born 4 July 1976, married on March 3rd, 2001.",
    "From 01/02/2003 to 31.12.2029, every Tuesday.",
    "Q3 FY2025 closed on Sept. 30; the next is due Jan 15th.",
];

const URLS: &[&str] = &[
    "See https://example.com/path?query=1&b=two#frag for details.",
    "Mail admin@example.org or visit www.example.net/docs/index.html",
    "ftp://files.example.com/pub/archive-2024.tar.gz and file:///tmp/x",
    "git@github.com:owner/repo.git, then http://localhost:8080/api/v1",
];

const SYMBOLS: &[&str] = &[
    "Great job! 🎉🎉 👍🏽 ❤️",
    "∑ ∞ → ≠ ≤ ≥ ± √ π µ © ® ™ § ¶",
    "🙂🙃😉😊😇🥰😍🤩😘😗☺️😚😙",
    "<b>bold</b> & \"quotes\" 'single' `back` {braces} [brackets] | \\ / ~ ^",
    "👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷 🇯🇵 keycap 1️⃣",
    "***!!!???...,,,;;;:::---___+++===",
];

const CONTROL: &[&str] = &[
    "tab\tseparated\tvalues here",
    "bell\u{7} and escape \u{1b}[31mred\u{1b}[0m text",
    "nul \u{0} byte inside",
    "line one\r\nline two\rline three\n",
    "zero\u{200b}width\u{200d}joiners and a \u{feff}BOM",
    "\u{1}\u{2}\u{3} start of heading",
];

const MIXED: &[&str] = &[
    "Hello, bonjour, 你好",
    "Guten Tag, こんにちは, 안녕하세요, hola.",
    "Спасибо, merci, thank you, 谢谢, شكرا",
    "The word 你好 means hello, and ça va means how are you.",
];

fn pick(rng: &mut Rng, list: &[&str]) -> String {
    list[rng.below(list.len())].to_string()
}

fn words(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| WORDS[rng.below(WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// `n` words, capitalised, with a comma now and then and a closing mark.
fn sentence(rng: &mut Rng, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let w = WORDS[rng.below(WORDS.len())];
        if i == 0 {
            let mut c = w.chars();
            s.extend(c.next().map(|f| f.to_ascii_uppercase()));
            s.push_str(c.as_str());
        } else {
            s.push(' ');
            s.push_str(w);
        }
        if i + 1 < n && i > 2 && rng.below(7) == 0 {
            s.push(',');
        }
    }
    s.push(['.', '.', '.', '?', '!'][rng.below(5)]);
    s
}

/// About `n` words in sentences of 8–20 words.
fn paragraph(rng: &mut Rng, n: usize) -> String {
    let mut left = n;
    let mut parts = Vec::new();
    while left > 0 {
        let k = (8 + rng.below(13)).min(left);
        parts.push(sentence(rng, k));
        left -= k;
    }
    parts.join(" ")
}

/// splitmix64: small, fast and good enough to vary a corpus.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_and_the_repeat_block_appear() {
        let cases = build(120, 7);
        assert_eq!(cases.len(), 120);
        for kind in SCHEDULE {
            assert!(cases.iter().any(|c| c.kind == *kind), "{kind} missing");
        }
        let r = repeat_len(120);
        assert_eq!(r, 12);
        let first = cases.iter().position(|c| c.kind == "repeat").unwrap();
        assert!(cases[first..first + r]
            .iter()
            .all(|c| c.kind == "repeat" && c.text == cases[first].text));
        assert_eq!(repeat_len(1000), 100);
        // A full run holds pages of 500+ words and paragraphs of 50–200.
        for c in build(1000, 1) {
            let n = c.text.split_whitespace().count();
            match c.kind {
                "page" => assert!(n >= 500, "{n}"),
                "paragraph" => assert!((50..=200).contains(&n), "{n}"),
                "sentence" => assert!((10..=30).contains(&n), "{n}"),
                "phrase" => assert!((1..=5).contains(&n), "{n}"),
                _ => {}
            }
        }
    }

    #[test]
    fn runs_are_deterministic_and_small_runs_work() {
        let a: Vec<String> = build(50, 3).into_iter().map(|c| c.text).collect();
        let b: Vec<String> = build(50, 3).into_iter().map(|c| c.text).collect();
        assert_eq!(a, b);
        assert_eq!(build(1, 3).len(), 1);
        assert!(build(0, 3).is_empty());
    }
}
