//! What the client sends with an event or a URL: form fields, `phx-value-*` values, query and
//! path parameters, as one flat map of strings.

use serde_json::Value;

/// Named string values. A form field repeated (`tags[]`) keeps its last value; views that need
/// every value read [`Params::all`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` text (a form event's `value`, a query string).
    pub fn from_urlencoded(text: &str) -> Self {
        Self {
            pairs: form_urlencoded::parse(text.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// Takes the string, number and boolean members of a JSON object (a click's `phx-value-*`).
    pub fn from_json(value: &Value) -> Self {
        let pairs = value
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(key, value)| {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((key.clone(), text))
            })
            .collect();
        Self { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value, or "" when absent: forms send every field, so absence is rare.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.pairs.push((name.into(), value.into()));
    }
}

/// A client event: a click, a form change or submit, a key press, or a hook's `pushEvent`.
#[derive(Debug, Clone)]
pub struct Event {
    /// `click`, `form`, `keyup`, `keydown`, `blur`, `focus` or `hook`.
    pub kind: String,
    pub name: String,
    /// Form fields or `phx-value-*` values.
    pub params: Params,
    /// For form changes: the name of the field that changed (`_target`).
    pub target: Option<String>,
    /// The value as sent, for hooks that push arbitrary JSON.
    pub value: Value,
}

impl Event {
    /// Decodes an `event` message's payload; `None` when it lacks a type or a name.
    pub fn from_payload(payload: &Value) -> Option<Self> {
        let kind = payload.get("type")?.as_str()?.to_owned();
        let name = payload.get("event")?.as_str()?.to_owned();
        let value = payload.get("value").cloned().unwrap_or(Value::Null);
        let params = match &value {
            Value::String(text) if kind == "form" => Params::from_urlencoded(text),
            other => Params::from_json(other),
        };
        let target = payload
            .pointer("/meta/_target")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Some(Self {
            kind,
            name,
            params,
            target,
            value,
        })
    }

    /// False for a field the user has not interacted with yet: the client marks those with
    /// `_unused_<name>`, so a form can hold back errors for fields not yet typed in.
    pub fn touched(&self, field: &str) -> bool {
        self.params.get(&format!("_unused_{field}")).is_none()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn form_events_decode_their_urlencoded_value_and_target() {
        let event = Event::from_payload(&json!({
            "type": "form", "event": "validate",
            "value": "name=a%20b&_unused_email=&email=",
            "meta": {"_target": "name"}
        }))
        .unwrap();
        assert_eq!(event.params.get("name"), Some("a b"));
        assert_eq!(event.target.as_deref(), Some("name"));
        assert!(event.touched("name"));
        assert!(!event.touched("email"));
    }

    #[test]
    fn click_values_are_strings() {
        let event = Event::from_payload(
            &json!({"type": "click", "event": "inc", "value": {"by": 2, "value": ""}}),
        )
        .unwrap();
        assert_eq!(event.params.get("by"), Some("2"));
        assert!(Event::from_payload(&json!({"type": 1})).is_none());
    }
}
