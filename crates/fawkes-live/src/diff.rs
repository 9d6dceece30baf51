//! The diff between what a client holds and a new render, in the shape the phoenix_live_view
//! client merges (`rendered.js` `mutableMerge`/`mergeKeyed`): only changed holes, statics only
//! where a template changed, list entries by position with moves referring to old positions.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::rendered::{Dynamic, List, ListEntry, Rendered, dynamics_json};

/// What to send so that a client holding `old` holds `new`; `None` when nothing changed.
pub fn diff(old: &Rendered, new: &Rendered) -> Option<Map<String, Value>> {
    if old.fingerprint() != new.fingerprint() {
        return match new.to_json() {
            Value::Object(full) => Some(full),
            _ => None,
        };
    }
    diff_dynamics(old.dynamics(), new.dynamics())
}

fn diff_dynamics(old: &[Dynamic], new: &[Dynamic]) -> Option<Map<String, Value>> {
    let mut changes = Map::new();
    for (index, value) in new.iter().enumerate() {
        let change = match old.get(index) {
            Some(previous) => diff_dynamic(previous, value),
            None => Some(value.to_json()),
        };
        if let Some(change) = change {
            changes.insert(index.to_string(), change);
        }
    }
    (!changes.is_empty()).then_some(changes)
}

fn diff_dynamic(old: &Dynamic, new: &Dynamic) -> Option<Value> {
    match (old, new) {
        (Dynamic::Html(a), Dynamic::Html(b)) => (a != b).then(|| Value::String(b.clone())),
        (Dynamic::Nested(a), Dynamic::Nested(b)) => diff(a, b).map(Value::Object),
        (Dynamic::List(a), Dynamic::List(b)) => diff_list(a, b),
        _ => Some(new.to_json()),
    }
}

/// Entries that kept their position and content are left out; a moved entry is its old index
/// (or `[old index, diff]`), which needs `"km"` so the client reads moves from a copy; a new
/// entry is sent whole. `"kc"` is always present: the client takes the count from it.
fn diff_list(old: &List, new: &List) -> Option<Value> {
    if old.template_fingerprint() != new.template_fingerprint() {
        return Some(new.to_json());
    }
    let old_positions: HashMap<&str, usize> = old
        .entries()
        .iter()
        .enumerate()
        .map(|(index, entry)| (entry.key.as_str(), index))
        .collect();
    let mut keyed = Map::new();
    let mut moved = false;
    for (index, entry) in new.entries().iter().enumerate() {
        let change = match old_positions.get(entry.key.as_str()) {
            Some(&from) => entry_change(&old.entries()[from], entry, from, index, &mut moved),
            None => Some(Value::Object(dynamics_json(&entry.dynamics))),
        };
        if let Some(change) = change {
            keyed.insert(index.to_string(), change);
        }
    }
    if keyed.is_empty() && old.len() == new.len() {
        return None;
    }
    keyed.insert("kc".into(), Value::from(new.len()));
    if moved {
        keyed.insert("km".into(), Value::Bool(true));
    }
    let mut node = Map::new();
    node.insert("k".into(), Value::Object(keyed));
    Some(Value::Object(node))
}

fn entry_change(
    old: &ListEntry,
    new: &ListEntry,
    from: usize,
    to: usize,
    moved: &mut bool,
) -> Option<Value> {
    let changes = diff_dynamics(&old.dynamics, &new.dynamics);
    if from == to {
        return changes.map(Value::Object);
    }
    *moved = true;
    Some(match changes {
        Some(changes) => Value::Array(vec![Value::from(from), Value::Object(changes)]),
        None => Value::from(from),
    })
}
