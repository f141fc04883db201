//! Glob-style pattern matching for KEYS, SCAN MATCH and SSCAN MATCH: `*`, `?`, `[abc]`, `[^a-z]`, and `\`
//! to escape, the same language as Redis. Iterative with backtracking to the last `*` only, so a hostile
//! pattern costs at most O(pattern × subject).

pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    let (mut pattern_index, mut subject_index) = (0, 0);
    // Where to resume if the current attempt fails: just after the last `*`, one subject byte further.
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        if pattern_index < pattern.len() {
            let (consumed, accepted) = match pattern[pattern_index] {
                b'*' => {
                    backtrack = Some((pattern_index + 1, subject_index + 1));
                    pattern_index += 1;
                    continue;
                }
                _ if subject_index >= subject.len() => (0, false),
                b'?' => (1, true),
                b'[' => match_class(&pattern[pattern_index..], subject[subject_index]),
                b'\\' if pattern_index + 1 < pattern.len() => {
                    (2, pattern[pattern_index + 1] == subject[subject_index])
                }
                literal => (1, literal == subject[subject_index]),
            };
            if accepted {
                pattern_index += consumed;
                subject_index += 1;
                continue;
            }
        } else if subject_index == subject.len() {
            return true;
        }
        match backtrack {
            Some((resume_pattern, resume_subject)) if resume_subject <= subject.len() => {
                pattern_index = resume_pattern;
                subject_index = resume_subject;
                backtrack = Some((resume_pattern, resume_subject + 1));
            }
            _ => return false,
        }
    }
}

/// Matches one byte against a `[...]` class at the start of `pattern`. Returns (pattern bytes used,
/// matched). An unterminated class runs to the end of the pattern, as in Redis.
fn match_class(pattern: &[u8], byte: u8) -> (usize, bool) {
    let mut index = 1;
    let negate = pattern.get(index) == Some(&b'^');
    if negate {
        index += 1;
    }
    let mut matched = false;
    while index < pattern.len() && pattern[index] != b']' {
        if pattern[index] == b'\\' && index + 1 < pattern.len() {
            index += 1;
            matched |= pattern[index] == byte;
        } else if index + 2 < pattern.len()
            && pattern[index + 1] == b'-'
            && pattern[index + 2] != b']'
        {
            let (low, high) = (
                pattern[index].min(pattern[index + 2]),
                pattern[index].max(pattern[index + 2]),
            );
            matched |= (low..=high).contains(&byte);
            index += 2;
        } else {
            matched |= pattern[index] == byte;
        }
        index += 1;
    }
    let used = (index + 1).min(pattern.len());
    (used, matched != negate)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn glob_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("user:*:likes", "user:42:likes", true),
            ("user:*:likes", "user:42:like", false),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ];
        for (pattern, subject, expected) in cases {
            assert_eq!(
                matches(pattern.as_bytes(), subject.as_bytes()),
                *expected,
                "{pattern} ~ {subject}"
            );
        }
    }
}
