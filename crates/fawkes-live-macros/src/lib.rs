//! `html!`: compiles a template into the statics/dynamics split that LiveView diffs are made of.
//!
//! A template is one string literal (a raw string is easiest, `r#"..."#`). Text is static; each
//! `{expr}` hole is a dynamic slot holding any Rust expression whose value implements
//! `fawkes_live::IntoDynamic` (text is HTML-escaped there, by construction). `{{` and `}}` are
//! literal braces. Runs of whitespace that contain a line break collapse to one space, so
//! templates can be indented without the indentation going over the wire.
//!
//! ```ignore
//! html!(r#"<li id="msg-{m.id}" class="chat">{m.body}</li>"#)
//! ```
//! expands to a `Rendered` whose statics (`["<li id=\"msg-", "\" class=\"chat\">", "</li>"]`)
//! live in a `static` and whose fingerprint is computed here, so the runtime compares templates
//! by a number and sends the statics once.

use proc_macro::TokenStream;
use quote::quote;
use syn::{Expr, LitStr, parse_macro_input};

#[proc_macro]
pub fn html(input: TokenStream) -> TokenStream {
    let literal = parse_macro_input!(input as LitStr);
    match compile(&literal.value()) {
        Ok((statics, holes)) => expand(&literal, statics, holes),
        Err(message) => syn::Error::new(literal.span(), message)
            .to_compile_error()
            .into(),
    }
}

fn expand(literal: &LitStr, statics: Vec<String>, holes: Vec<String>) -> TokenStream {
    let mut exprs = Vec::with_capacity(holes.len());
    for hole in &holes {
        match syn::parse_str::<Expr>(hole) {
            Ok(expr) => exprs.push(expr),
            Err(error) => {
                let message = format!("in template hole `{{{hole}}}`: {error}");
                return syn::Error::new(literal.span(), message)
                    .to_compile_error()
                    .into();
            }
        }
    }
    let fingerprint = fingerprint(&statics);
    quote! {{
        static STATICS: &[&str] = &[#(#statics),*];
        ::fawkes_live::Rendered::from_parts(
            #fingerprint,
            STATICS,
            ::std::vec![#(::fawkes_live::IntoDynamic::into_dynamic(#exprs)),*],
        )
    }}
    .into()
}

/// Splits the template at its holes: n holes give n + 1 statics.
fn compile(template: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let mut statics = Vec::new();
    let mut holes = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '}' => return Err("unmatched `}` in template (write `}}` for a literal brace)".into()),
            '{' => {
                holes.push(read_hole(&mut chars)?);
                statics.push(collapse_whitespace(&std::mem::take(&mut text)));
            }
            c => text.push(c),
        }
    }
    statics.push(collapse_whitespace(&text));
    if let Some(first) = statics.first_mut() {
        *first = first.trim_start().to_owned();
    }
    if let Some(last) = statics.last_mut() {
        *last = last.trim_end().to_owned();
    }
    Ok((statics, holes))
}

/// Reads an expression up to its closing brace, allowing nested braces and string literals.
fn read_hole(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, String> {
    let mut depth = 0usize;
    let mut hole = String::new();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            hole.push(c);
            match c {
                '\\' => {
                    if let Some(escaped) = chars.next() {
                        hole.push(escaped);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                hole.push(c);
            }
            '{' => {
                depth += 1;
                hole.push(c);
            }
            '}' if depth == 0 => {
                if hole.trim().is_empty() {
                    return Err("empty `{}` hole in template".into());
                }
                return Ok(hole);
            }
            '}' => {
                depth -= 1;
                hole.push(c);
            }
            c => hole.push(c),
        }
    }
    Err("unclosed `{` in template (write `{{` for a literal brace)".into())
}

fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars() {
        if c.is_whitespace() {
            run.push(c);
            continue;
        }
        flush_run(&mut out, &mut run);
        out.push(c);
    }
    flush_run(&mut out, &mut run);
    out
}

fn flush_run(out: &mut String, run: &mut String) {
    if run.contains('\n') {
        out.push(' ');
    } else {
        out.push_str(run);
    }
    run.clear();
}

/// FNV-1a over the statics, each followed by a separator byte that cannot occur in a `str`
/// (0xFF), so `["a", "b"]` and `["ab", ""]` differ.
fn fingerprint(statics: &[String]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in statics {
        for byte in part.bytes().chain(std::iter::once(0xFF)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_split_the_statics() {
        let (statics, holes) = compile(r#"<p class="x">{a.b}</p>{ c }"#).unwrap();
        assert_eq!(statics, vec![r#"<p class="x">"#, "</p>", ""]);
        assert_eq!(holes, vec!["a.b", " c "]);
    }

    #[test]
    fn doubled_braces_are_literal_and_nested_braces_stay_in_the_hole() {
        let (statics, holes) = compile(r#"{{x}} {if a { "}" } else { "b" }}"#).unwrap();
        assert_eq!(statics, vec!["{x} ", ""]);
        assert_eq!(holes, vec![r#"if a { "}" } else { "b" }"#]);
    }

    #[test]
    fn indentation_collapses_but_inline_spaces_stay() {
        let (statics, _) = compile("\n  <ul>\n    <li>a  b</li>\n  </ul>\n").unwrap();
        assert_eq!(statics, vec!["<ul> <li>a  b</li> </ul>"]);
    }

    #[test]
    fn unbalanced_braces_are_errors() {
        assert!(compile("<p>{a</p>").is_err());
        assert!(compile("<p>a}</p>").is_err());
        assert!(compile("<p>{}</p>").is_err());
    }

    #[test]
    fn fingerprints_tell_statics_apart() {
        let ab = fingerprint(&["a".into(), "b".into()]);
        assert_ne!(ab, fingerprint(&["ab".into(), String::new()]));
        assert_eq!(ab, fingerprint(&["a".into(), "b".into()]));
    }
}
