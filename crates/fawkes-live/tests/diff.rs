//! Diffs as the client merges them: only what changed, statics once, lists by key.

use fawkes_live::{List, Rendered, diff, html};
use serde_json::json;

fn row(id: u32, body: &str) -> Rendered {
    html!(r#"<li id="m-{id}">{body}</li>"#)
}

fn page(count: u32, typing: &str, ids: &[u32]) -> Rendered {
    let rows = List::keyed(
        ids.iter()
            .map(|&id| (id, row(id, &format!("message {id}")))),
    );
    html!(
        r#"<main>
             <p id="count">{count}</p>
             <p id="typing">{typing}</p>
             <ul>{rows}</ul>
           </main>"#
    )
}

#[test]
fn a_render_sends_statics_once_and_html_matches() {
    let rendered = page(1, "", &[1, 2]);
    assert_eq!(
        rendered.to_html(),
        r#"<main> <p id="count">1</p> <p id="typing"></p> <ul><li id="m-1">message 1</li><li id="m-2">message 2</li></ul> </main>"#
    );
    let full = rendered.to_json();
    assert_eq!(full["s"][0], json!(r#"<main> <p id="count">"#));
    assert_eq!(full["2"]["k"]["kc"], json!(2));
    assert_eq!(full["2"]["k"]["1"], json!({"0": "2", "1": "message 2"}));
}

#[test]
fn an_unchanged_render_sends_nothing_and_a_counter_sends_one_value() {
    let before = page(1, "", &[1, 2]);
    assert_eq!(diff(&before, &page(1, "", &[1, 2])), None);
    let changes = diff(&before, &page(2, "", &[1, 2])).unwrap();
    assert_eq!(serde_json::Value::Object(changes), json!({"0": "2"}));
}

#[test]
fn an_appended_item_sends_that_item_only() {
    let ids: Vec<u32> = (1..=200).collect();
    let mut more = ids.clone();
    more.push(201);
    let changes = diff(&page(0, "", &ids), &page(0, "", &more)).unwrap();
    assert_eq!(
        serde_json::Value::Object(changes),
        json!({"2": {"k": {"200": {"0": "201", "1": "message 201"}, "kc": 201}}})
    );
}

#[test]
fn removed_and_moved_items_refer_to_old_positions() {
    let changes = diff(&page(0, "", &[1, 2, 3]), &page(0, "", &[3, 1])).unwrap();
    assert_eq!(
        serde_json::Value::Object(changes),
        json!({"2": {"k": {"0": 2, "1": 0, "kc": 2, "km": true}}})
    );
    let edited = List::keyed([(2, row(2, "edited")), (1, row(1, "message 1"))]);
    let before = List::keyed([(1, row(1, "message 1")), (2, row(2, "message 2"))]);
    let changes = diff(&html!("<ul>{before}</ul>"), &html!("<ul>{edited}</ul>")).unwrap();
    assert_eq!(
        serde_json::Value::Object(changes),
        json!({"0": {"k": {"0": [1, {"1": "edited"}], "1": 0, "kc": 2, "km": true}}})
    );
}

#[test]
fn a_changed_template_resends_its_statics() {
    let signed_in: Rendered = html!("<b>{\"ada\"}</b>");
    let signed_out: Rendered = html!("<a href=\"/login\">log in</a>");
    let before = html!("<nav>{signed_in}</nav>");
    let after = html!("<nav>{signed_out}</nav>");
    let changes = serde_json::Value::Object(diff(&before, &after).unwrap());
    assert_eq!(
        changes,
        json!({"0": {"s": ["<a href=\"/login\">log in</a>"]}})
    );
}

#[test]
fn text_is_escaped_by_construction() {
    let evil = "<script>alert('x')</script>\" onmouseover=\"x";
    let rendered: Rendered = html!(r#"<p title="{evil}">{evil}</p>"#);
    let html = rendered.to_html();
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("\" onmouseover"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
}

#[test]
fn an_emptied_list_and_a_first_item() {
    let empty: Rendered = html!("<ul>{List::default()}</ul>");
    let one = html!("<ul>{List::keyed([(1, row(1, \"hi\"))])}</ul>");
    let changes = serde_json::Value::Object(diff(&empty, &one).unwrap());
    assert_eq!(changes["0"]["k"]["kc"], json!(1));
    assert!(
        changes["0"]["s"].is_array(),
        "a new template sends its statics"
    );
    let changes = serde_json::Value::Object(diff(&one, &empty).unwrap());
    assert_eq!(changes["0"]["k"]["kc"], json!(0));
}
