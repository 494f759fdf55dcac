//! Showing text from a scenario file back to the user, safely.
//!
//! Error messages quote the file (`found \`…\``, did-you-mean, process
//! names), and they go to a terminal. A file is input from anyone: an
//! escape sequence in it, echoed raw, could clear the screen, set the
//! window title or hide the rest of the message. So every piece of input a
//! message shows goes through [`escape`]: ASCII control characters become
//! `\t`, `\n`, `\r` or `\xNN`, other characters that do not print (C1
//! controls such as U+009B, the single-byte CSI; bidirectional overrides;
//! zero-width and format characters; unassigned code points) become
//! `\u{…}`, and a backslash becomes `\\` so that an escape cannot be
//! forged. Printable Unicode (`é`, `名`) is kept as it is.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every character that is not printable, and every backslash,
/// escaped. Borrows when there is nothing to escape.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `c` is shown escaped. The standard library's printability table
/// (what `char::escape_debug` uses) decides for non-ASCII characters: it
/// escapes exactly the characters that do not print on their own. Quotes,
/// which `escape_debug` also escapes, print.
fn needs_escape(c: char) -> bool {
    match c {
        '\\' => true,
        '\'' | '"' => false,
        c if c.is_ascii() => c.is_ascii_control(),
        // Whitespace other than the space is invisible or moves the cursor:
        // line and paragraph separators, the ideographic space, NBSP.
        c if c.is_whitespace() => true,
        c => c.escape_debug().next() == Some('\\'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(escape("\x07\x00\x7f"), "\\x07\\x00\\x7f");
        assert_eq!(escape("\t\n\r"), "\\t\\n\\r");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape("\u{202e}evil"), "\\u{202e}evil");
        assert_eq!(escape("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(escape("line\u{2028}sep"), "line\\u{2028}sep");
    }

    #[test]
    fn printable_text_is_kept() {
        assert!(matches!(escape("kill init SIGTERM"), Cow::Borrowed(_)));
        assert_eq!(escape("é名 'q' \"q\" ~"), "é名 'q' \"q\" ~");
    }

    #[test]
    fn a_backslash_cannot_forge_an_escape() {
        assert_eq!(escape("\\x1b"), "\\\\x1b");
        assert_ne!(escape("\\x1b"), escape("\x1b"));
    }

    #[test]
    fn nothing_unprintable_survives() {
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let shown = escape(&c.to_string()).into_owned();
            assert!(!shown.chars().any(|c| c.is_control()), "{:x} shown as {shown:?}", c as u32);
        }
    }
}
