//! Sentence splitting for long requests: sentences first, then clauses (commas and the like),
//! then spaces, then a hard cut, so that no piece is longer than the limit.

/// Split `text` into trimmed, non-empty pieces of at most `max_chars` characters.
pub fn split_sentences(text: &str, max_chars: usize) -> Vec<String> {
    let max = max_chars.max(1);
    let mut out = Vec::new();
    for sentence in split_after(text, is_sentence_end) {
        if sentence.chars().count() <= max {
            push_piece(&mut out, sentence);
            continue;
        }
        for clause in pack(split_after(sentence, is_clause_end), max) {
            if clause.chars().count() <= max {
                push_piece(&mut out, &clause);
                continue;
            }
            for words in pack(split_after(&clause, char::is_whitespace), max) {
                for piece in hard_cut(&words, max) {
                    push_piece(&mut out, &piece);
                }
            }
        }
    }
    out
}

fn push_piece(out: &mut Vec<String>, s: &str) {
    let t = s.trim();
    if !t.is_empty() {
        out.push(t.to_string());
    }
}

fn is_sentence_end(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '…' | '\n')
}

fn is_clause_end(c: char) -> bool {
    matches!(c, ',' | ';' | ':' | '，' | '、' | '；' | '：' | '—')
}

/// Split after each run of boundary characters (closing quotes and brackets stay attached),
/// but only where a space, the end, or a CJK boundary follows, so "3.5" and "e.g." inside a word
/// stay whole.
fn split_after(text: &str, boundary: impl Fn(char) -> bool) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (_, c) = chars[i];
        if boundary(c) {
            let mut j = i + 1;
            while j < chars.len() && (boundary(chars[j].1) || is_closer(chars[j].1)) {
                j += 1;
            }
            let at_break = j == chars.len() || chars[j].1.is_whitespace() || !c.is_ascii();
            if at_break {
                let end = if j == chars.len() {
                    text.len()
                } else {
                    chars[j].0
                };
                pieces.push(&text[start..end]);
                start = end;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '”' | '’' | '」' | '』' | '）')
}

/// Greedily join consecutive parts while the result stays within `max` characters.
fn pack(parts: Vec<&str>, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for p in parts {
        if !cur.is_empty() && cur.chars().count() + p.chars().count() > max {
            out.push(std::mem::take(&mut cur));
        }
        cur.push_str(p);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn hard_cut(s: &str, max: usize) -> Vec<String> {
    let chars: Vec<char> = s.trim().chars().collect();
    chars.chunks(max).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_then_clauses_then_spaces() {
        let t = "Hello there. How are you? Fine!";
        assert_eq!(
            split_sentences(t, 200),
            ["Hello there.", "How are you?", "Fine!"]
        );
        assert_eq!(
            split_sentences("Pi is 3.14 today.", 200),
            ["Pi is 3.14 today."]
        );
        let long = "one two three, four five six, seven eight nine.";
        let p = split_sentences(long, 20);
        assert_eq!(p, ["one two three,", "four five six,", "seven eight nine."]);
        let words = "aaaa bbbb cccc dddd";
        assert_eq!(split_sentences(words, 10), ["aaaa bbbb", "cccc dddd"]);
        assert_eq!(split_sentences("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(split_sentences("你好。世界！", 200), ["你好。", "世界！"]);
        assert!(split_sentences("  \n ", 10).is_empty());
        for p in split_sentences(&"word ".repeat(500), 200) {
            assert!(p.chars().count() <= 200);
        }
    }
}
