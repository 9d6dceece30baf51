//! `@username` mentions in a text.

/// At most this many names are looked up per text; a text naming more notifies the first ones.
const MAX_MENTIONS: usize = 50;

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// The names a text may mention, lowercased (as `users.username_key` stores them), without
/// repeats, in order of appearance. A mention is `@` followed by username characters
/// (letters, digits, `_`, `.`, `-`) and not preceded by one, so `ada@example.com` mentions
/// nobody. A name ending in `.` or `-` (`@ada.` at the end of a sentence) is tried both as
/// written and without that tail; names outside 3 to 32 characters cannot exist and are left
/// out, as is a name running into a letter no username has (`@andré`).
pub(crate) fn mentioned_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut push = |name: &str| {
        let name = name.to_ascii_lowercase();
        if (3..=32).contains(&name.len()) && !names.contains(&name) && names.len() < MAX_MENTIONS {
            names.push(name);
        }
    };
    let mut previous: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c == '@' && !previous.is_some_and(is_name_char) {
            let start = at + c.len_utf8();
            let mut end = start;
            while let Some(&(i, next)) = chars.peek() {
                if !is_name_char(next) {
                    break;
                }
                end = i + next.len_utf8();
                chars.next();
            }
            let name = &text[start..end];
            // `@andré` names nobody, rather than a user `andr`.
            let cut_short = chars
                .peek()
                .is_some_and(|&(_, next)| next.is_alphanumeric());
            if !name.is_empty() && !cut_short {
                push(name);
                let trimmed = name.trim_end_matches(['.', '-']);
                if trimmed != name {
                    push(trimmed);
                }
                previous = name.chars().last();
                continue;
            }
        }
        previous = Some(c);
    }
    names
}

/// Whether a text may mention anyone: actions enqueue a notification job only then.
pub(crate) fn may_mention(text: &str) -> bool {
    !mentioned_names(text).is_empty()
}

#[cfg(test)]
mod tests {
    use super::mentioned_names;

    #[test]
    fn mentions_are_found_lowercased_once_each() {
        assert_eq!(
            mentioned_names("hi @Ada and @bob_2, @ADA again"),
            ["ada", "bob_2"]
        );
        assert_eq!(mentioned_names("@ada"), ["ada"]);
        assert_eq!(mentioned_names("(@grace)"), ["grace"]);
    }

    #[test]
    fn emails_short_names_and_bare_signs_mention_nobody() {
        assert!(mentioned_names("mail ada@example.com").is_empty());
        assert!(mentioned_names("@ @@ @x @ab").is_empty());
        assert!(mentioned_names(&format!("@{}", "a".repeat(33))).is_empty());
    }

    #[test]
    fn a_trailing_dot_is_tried_both_ways() {
        assert_eq!(mentioned_names("thanks @ada."), ["ada.", "ada"]);
        assert_eq!(mentioned_names("@a.b-c"), ["a.b-c"]);
    }

    #[test]
    fn non_ascii_text_around_mentions_is_fine() {
        assert_eq!(mentioned_names("héllo @andré, @zoë_x and @ada!"), ["ada"]);
    }
}
