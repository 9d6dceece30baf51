//! A rendered template: statics shared by every render of the same template, and the dynamic
//! values of this render. What `html!` produces and what diffs are computed from.

use std::fmt::Write;

use serde_json::{Map, Value};

/// One render of one template.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    fingerprint: u64,
    statics: &'static [&'static str],
    dynamics: Vec<Dynamic>,
}

/// The value of one hole.
#[derive(Debug, Clone, PartialEq)]
pub enum Dynamic {
    /// HTML, already escaped: only [`IntoDynamic`] makes it, from text it escapes.
    Html(String),
    Nested(Rendered),
    List(List),
}

/// A keyed list of renders: sent as a comprehension, so adding one item sends that item only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct List {
    /// The statics every entry shares, with their fingerprint; `None` for an empty list.
    template: Option<(u64, &'static [&'static str])>,
    entries: Vec<ListEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListEntry {
    pub key: String,
    pub dynamics: Vec<Dynamic>,
}

/// Statics for entries that do not share one template: each entry becomes one nested render.
static WRAPPER: &[&str] = &["", ""];
const WRAPPER_FINGERPRINT: u64 = 0;

impl Rendered {
    /// Used by `html!`; `statics` has one more element than `dynamics`.
    pub fn from_parts(
        fingerprint: u64,
        statics: &'static [&'static str],
        dynamics: Vec<Dynamic>,
    ) -> Self {
        debug_assert_eq!(statics.len(), dynamics.len() + 1);
        Self {
            fingerprint,
            statics,
            dynamics,
        }
    }

    /// Renders nothing.
    pub fn empty() -> Self {
        static EMPTY: &[&str] = &[""];
        Self::from_parts(1, EMPTY, Vec::new())
    }

    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    pub(crate) fn dynamics(&self) -> &[Dynamic] {
        &self.dynamics
    }

    /// The HTML, as the client builds it from the JSON form (used for the first, plain HTTP
    /// render, which must match the live one).
    pub fn to_html(&self) -> String {
        let mut out = String::new();
        write_parts(&mut out, self.statics, &self.dynamics);
        out
    }

    /// The full JSON form, statics included: what a join sends.
    pub fn to_json(&self) -> Value {
        let mut node = dynamics_json(&self.dynamics);
        node.insert("s".into(), statics_json(self.statics));
        Value::Object(node)
    }
}

impl List {
    /// A list from `(key, render)` pairs. Keys identify items across renders, so an item that
    /// moves or stays is not sent again; they should be unique (a duplicate key counts as new).
    pub fn keyed<K: ToString>(items: impl IntoIterator<Item = (K, Rendered)>) -> Self {
        let items: Vec<(String, Rendered)> =
            items.into_iter().map(|(k, r)| (k.to_string(), r)).collect();
        let Some(first) = items.first() else {
            return Self::default();
        };
        let shared = (first.1.fingerprint, first.1.statics);
        let homogeneous = items.iter().all(|(_, r)| r.fingerprint == shared.0);
        let (template, entries) = if homogeneous {
            let entries = items
                .into_iter()
                .map(|(key, r)| ListEntry {
                    key,
                    dynamics: r.dynamics,
                })
                .collect();
            (shared, entries)
        } else {
            let entries = items
                .into_iter()
                .map(|(key, r)| ListEntry {
                    key,
                    dynamics: vec![Dynamic::Nested(r)],
                })
                .collect();
            ((WRAPPER_FINGERPRINT, WRAPPER), entries)
        };
        Self {
            template: Some(template),
            entries,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn template_fingerprint(&self) -> Option<u64> {
        self.template.map(|(fingerprint, _)| fingerprint)
    }

    pub(crate) fn entries(&self) -> &[ListEntry] {
        &self.entries
    }

    fn statics(&self) -> &'static [&'static str] {
        self.template.map_or(WRAPPER, |(_, statics)| statics)
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut keyed = Map::new();
        for (index, entry) in self.entries.iter().enumerate() {
            keyed.insert(
                index.to_string(),
                Value::Object(dynamics_json(&entry.dynamics)),
            );
        }
        keyed.insert("kc".into(), Value::from(self.entries.len()));
        let mut node = Map::new();
        node.insert("s".into(), statics_json(self.statics()));
        node.insert("k".into(), Value::Object(keyed));
        Value::Object(node)
    }
}

impl Dynamic {
    /// The full JSON form of this value.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Dynamic::Html(html) => Value::String(html.clone()),
            Dynamic::Nested(rendered) => rendered.to_json(),
            Dynamic::List(list) => list.to_json(),
        }
    }

    fn write_html(&self, out: &mut String) {
        match self {
            Dynamic::Html(html) => out.push_str(html),
            Dynamic::Nested(rendered) => write_parts(out, rendered.statics, &rendered.dynamics),
            Dynamic::List(list) => {
                for entry in &list.entries {
                    write_parts(out, list.statics(), &entry.dynamics);
                }
            }
        }
    }
}

fn write_parts(out: &mut String, statics: &[&str], dynamics: &[Dynamic]) {
    for (index, part) in statics.iter().enumerate() {
        out.push_str(part);
        if let Some(dynamic) = dynamics.get(index) {
            dynamic.write_html(out);
        }
    }
}

pub(crate) fn dynamics_json(dynamics: &[Dynamic]) -> Map<String, Value> {
    dynamics
        .iter()
        .enumerate()
        .map(|(index, dynamic)| (index.to_string(), dynamic.to_json()))
        .collect()
}

fn statics_json(statics: &[&str]) -> Value {
    Value::Array(statics.iter().map(|s| Value::from(*s)).collect())
}

/// What may fill a hole. Text is escaped here, so a template cannot forget to.
pub trait IntoDynamic {
    fn into_dynamic(self) -> Dynamic;
}

impl IntoDynamic for Dynamic {
    fn into_dynamic(self) -> Dynamic {
        self
    }
}

impl IntoDynamic for Rendered {
    fn into_dynamic(self) -> Dynamic {
        Dynamic::Nested(self)
    }
}

impl IntoDynamic for List {
    fn into_dynamic(self) -> Dynamic {
        Dynamic::List(self)
    }
}

impl IntoDynamic for &str {
    fn into_dynamic(self) -> Dynamic {
        Dynamic::Html(html_escape::encode_quoted_attribute(self).into_owned())
    }
}

impl IntoDynamic for String {
    fn into_dynamic(self) -> Dynamic {
        self.as_str().into_dynamic()
    }
}

impl IntoDynamic for &String {
    fn into_dynamic(self) -> Dynamic {
        self.as_str().into_dynamic()
    }
}

impl<T: IntoDynamic> IntoDynamic for Option<T> {
    fn into_dynamic(self) -> Dynamic {
        match self {
            Some(value) => value.into_dynamic(),
            None => Dynamic::Html(String::new()),
        }
    }
}

/// Values whose text form never needs escaping.
macro_rules! plain_text {
    ($($ty:ty),*) => {$(
        impl IntoDynamic for $ty {
            fn into_dynamic(self) -> Dynamic {
                let mut text = String::new();
                let _ = write!(text, "{self}");
                Dynamic::Html(text)
            }
        }
    )*};
}
plain_text!(
    u8,
    u16,
    u32,
    u64,
    usize,
    i8,
    i16,
    i32,
    i64,
    isize,
    bool,
    uuid::Uuid
);

impl IntoDynamic for &uuid::Uuid {
    fn into_dynamic(self) -> Dynamic {
        (*self).into_dynamic()
    }
}
