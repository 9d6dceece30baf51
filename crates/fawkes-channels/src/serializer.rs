//! The wire formats: V1 JSON objects, V2 JSON arrays and V2 binary frames (spec §1.4–1.6).

use axum::extract::ws::Utf8Bytes;
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

use crate::message::{Kind, Message, Outgoing, Payload};

/// An encoded frame, ready for any number of connections: cloning shares the bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(Utf8Bytes),
    Binary(Bytes),
}

impl Frame {
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Binary(bytes) => bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why an incoming frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the frame is not valid JSON")]
    Json,
    #[error("the frame does not have the shape of a message: {0}")]
    Shape(&'static str),
    #[error("binary frames need the V2 serializer")]
    BinaryOnV1,
    #[error("a binary frame is truncated or has an unknown kind")]
    Binary,
}

/// The serializer of a connection, chosen once from its `vsn` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Serializer {
    V1,
    V2,
}

impl Serializer {
    /// `vsn` as Phoenix negotiates it: missing means 1.0.0; `~> 1.0.0` is V1 and `~> 2.0.0` is V2;
    /// anything else, including text that is not SemVer, is refused.
    pub fn negotiate(vsn: Option<&str>) -> Option<Serializer> {
        let vsn = vsn.unwrap_or("1.0.0");
        let core = vsn.split(['-', '+']).next().unwrap_or_default();
        let mut parts = core.split('.');
        let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || patch.parse::<u64>().is_err() {
            return None;
        }
        match (major.parse::<u64>().ok()?, minor.parse::<u64>().ok()?) {
            (1, 0) => Some(Serializer::V1),
            (2, 0) => Some(Serializer::V2),
            _ => None,
        }
    }

    pub fn decode_text(self, text: &str) -> Result<Message, DecodeError> {
        let value: Value = serde_json::from_str(text).map_err(|_| DecodeError::Json)?;
        match self {
            Serializer::V2 => decode_v2_array(value),
            Serializer::V1 => decode_v1_object(value),
        }
    }

    pub fn decode_binary(self, bytes: &[u8]) -> Result<Message, DecodeError> {
        match self {
            Serializer::V1 => Err(DecodeError::BinaryOnV1),
            Serializer::V2 => decode_binary_push(bytes),
        }
    }

    /// Encodes a server-to-client message. `None` when the format cannot carry it: a binary
    /// payload on V1, or a binary header field longer than 255 bytes.
    pub fn encode(self, out: &Outgoing<'_>) -> Option<Frame> {
        match (self, out.payload) {
            (Serializer::V2, Payload::Binary(data)) => encode_binary(out, data).map(Frame::Binary),
            (Serializer::V1, Payload::Binary(_)) => None,
            (Serializer::V2, Payload::Json(payload)) => {
                Some(Frame::Text(encode_v2_text(out, payload).into()))
            }
            (Serializer::V1, Payload::Json(payload)) => {
                Some(Frame::Text(encode_v1_text(out, payload).into()))
            }
        }
    }
}

fn optional_string(value: &Value, what: &'static str) -> Result<Option<String>, DecodeError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(DecodeError::Shape(what)),
    }
}

fn required_string(value: Option<&Value>, what: &'static str) -> Result<String, DecodeError> {
    match value {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(DecodeError::Shape(what)),
    }
}

fn decode_v2_array(value: Value) -> Result<Message, DecodeError> {
    let Value::Array(mut items) = value else {
        return Err(DecodeError::Shape(
            "expected [join_ref, ref, topic, event, payload]",
        ));
    };
    if items.len() < 5 {
        return Err(DecodeError::Shape(
            "expected [join_ref, ref, topic, event, payload]",
        ));
    }
    let payload = std::mem::take(&mut items[4]);
    Ok(Message {
        join_ref: optional_string(&items[0], "join_ref must be a string or null")?,
        msg_ref: optional_string(&items[1], "ref must be a string or null")?,
        topic: required_string(items.get(2), "topic must be a string")?,
        event: required_string(items.get(3), "event must be a string")?,
        payload: Payload::Json(payload),
    })
}

fn decode_v1_object(value: Value) -> Result<Message, DecodeError> {
    let Value::Object(mut map) = value else {
        return Err(DecodeError::Shape("expected {topic, event, payload, ref}"));
    };
    let payload = map
        .remove("payload")
        .ok_or(DecodeError::Shape("payload is missing"))?;
    let msg_ref = map.get("ref").ok_or(DecodeError::Shape("ref is missing"))?;
    Ok(Message {
        join_ref: optional_string(
            map.get("join_ref").unwrap_or(&Value::Null),
            "join_ref must be a string or null",
        )?,
        msg_ref: optional_string(msg_ref, "ref must be a string or null")?,
        topic: required_string(map.get("topic"), "topic must be a string")?,
        event: required_string(map.get("event"), "event must be a string")?,
        payload: Payload::Json(payload),
    })
}

/// A client push: `0, join_ref_len, ref_len, topic_len, event_len, join_ref, ref, topic, event, payload`.
fn decode_binary_push(bytes: &[u8]) -> Result<Message, DecodeError> {
    let (&kind, rest) = bytes.split_first().ok_or(DecodeError::Binary)?;
    if kind != 0 || rest.len() < 4 {
        return Err(DecodeError::Binary);
    }
    let lengths = [rest[0], rest[1], rest[2], rest[3]].map(usize::from);
    let mut offset = 4;
    let mut fields = Vec::with_capacity(4);
    for length in lengths {
        let field = rest
            .get(offset..offset + length)
            .ok_or(DecodeError::Binary)?;
        fields.push(
            std::str::from_utf8(field)
                .map_err(|_| DecodeError::Binary)?
                .to_owned(),
        );
        offset += length;
    }
    let payload = Bytes::copy_from_slice(rest.get(offset..).unwrap_or_default());
    let mut fields = fields.into_iter();
    let mut next = || fields.next().unwrap_or_default();
    let (join_ref, msg_ref, topic, event) = (next(), next(), next(), next());
    Ok(Message {
        // An empty join_ref is how a null one is written.
        join_ref: Some(join_ref).filter(|s| !s.is_empty()),
        msg_ref: Some(msg_ref).filter(|s| !s.is_empty()),
        topic,
        event,
        payload: Payload::Binary(payload),
    })
}

fn encode_v2_text(out: &Outgoing<'_>, payload: &Value) -> String {
    let frame = match out.kind {
        Kind::Reply => {
            serde_json::json!([out.join_ref, out.msg_ref, out.topic, "phx_reply", {"status": out.event, "response": payload}])
        }
        Kind::Push => serde_json::json!([out.join_ref, Value::Null, out.topic, out.event, payload]),
        Kind::Broadcast => {
            serde_json::json!([Value::Null, Value::Null, out.topic, out.event, payload])
        }
        Kind::Control => {
            serde_json::json!([out.join_ref, out.join_ref, out.topic, out.event, payload])
        }
    };
    frame.to_string()
}

fn encode_v1_text(out: &Outgoing<'_>, payload: &Value) -> String {
    let frame = match out.kind {
        Kind::Reply => serde_json::json!({
            "topic": out.topic, "event": "phx_reply", "ref": out.msg_ref,
            "payload": {"status": out.event, "response": payload},
        }),
        Kind::Push | Kind::Broadcast => serde_json::json!({
            "topic": out.topic, "event": out.event, "ref": Value::Null, "payload": payload,
        }),
        Kind::Control => serde_json::json!({
            "topic": out.topic, "event": out.event, "ref": out.join_ref, "payload": payload,
        }),
    };
    frame.to_string()
}

fn encode_binary(out: &Outgoing<'_>, data: &Bytes) -> Option<Bytes> {
    let join_ref = out.join_ref.unwrap_or_default();
    let msg_ref = out.msg_ref.unwrap_or_default();
    let header: Vec<&str> = match out.kind {
        Kind::Push | Kind::Control => vec![join_ref, out.topic, out.event],
        Kind::Reply => vec![join_ref, msg_ref, out.topic, out.event],
        Kind::Broadcast => vec![out.topic, out.event],
    };
    let kind = match out.kind {
        Kind::Push | Kind::Control => 0u8,
        Kind::Reply => 1,
        Kind::Broadcast => 2,
    };
    let text_len: usize = header.iter().map(|s| s.len()).sum();
    let mut frame = BytesMut::with_capacity(1 + header.len() + text_len + data.len());
    frame.put_u8(kind);
    for field in &header {
        frame.put_u8(u8::try_from(field.len()).ok()?);
    }
    for field in &header {
        frame.put_slice(field.as_bytes());
    }
    frame.put_slice(data);
    Some(frame.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out<'a>(
        kind: Kind,
        join_ref: Option<&'a str>,
        msg_ref: Option<&'a str>,
        event: &'a str,
        payload: &'a Payload,
    ) -> Outgoing<'a> {
        Outgoing {
            kind,
            join_ref,
            msg_ref,
            topic: "room:lobby",
            event,
            payload,
        }
    }

    #[test]
    fn vsn_negotiation_follows_phoenix() {
        assert_eq!(Serializer::negotiate(None), Some(Serializer::V1));
        assert_eq!(Serializer::negotiate(Some("1.0.0")), Some(Serializer::V1));
        assert_eq!(Serializer::negotiate(Some("2.0.0")), Some(Serializer::V2));
        assert_eq!(Serializer::negotiate(Some("2.0.7")), Some(Serializer::V2));
        assert_eq!(Serializer::negotiate(Some("2.1.0")), None);
        assert_eq!(Serializer::negotiate(Some("123.1.1")), None);
        assert_eq!(Serializer::negotiate(Some("two")), None);
        assert_eq!(Serializer::negotiate(Some("2.0")), None);
    }

    #[test]
    fn v2_text_frames_decode_and_encode() {
        let message =
            Serializer::V2.decode_text(r#"["1","2","room:lobby","new_msg",{"body":"hi"}]"#);
        let message = message.ok();
        assert_eq!(
            message
                .as_ref()
                .map(|m| (m.join_ref.as_deref(), m.msg_ref.as_deref())),
            Some((Some("1"), Some("2")))
        );
        let payload = Payload::Json(serde_json::json!({}));
        let reply = Serializer::V2.encode(&out(Kind::Reply, Some("1"), Some("2"), "ok", &payload));
        let expected: Value = serde_json::json!(["1", "2", "room:lobby", "phx_reply", {"status": "ok", "response": {}}]);
        let Some(Frame::Text(text)) = reply else {
            panic!("expected text")
        };
        assert_eq!(serde_json::from_str::<Value>(&text).ok(), Some(expected));
        let Some(Frame::Text(text)) =
            Serializer::V2.encode(&out(Kind::Broadcast, None, None, "e", &payload))
        else {
            panic!()
        };
        assert_eq!(&*text, r#"[null,null,"room:lobby","e",{}]"#);
    }

    #[test]
    fn malformed_v2_frames_are_refused() {
        for bad in [
            "{",
            "[1,2,3]",
            r#"[null,null,5,"e",{}]"#,
            r#"[null,7,"t","e",{}]"#,
            r#"{"topic":"t"}"#,
        ] {
            assert!(Serializer::V2.decode_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn v1_frames_are_objects_without_join_ref() {
        let message = Serializer::V1
            .decode_text(r#"{"topic":"t","event":"e","payload":{},"ref":"3"}"#)
            .ok();
        assert_eq!(message.map(|m| m.msg_ref), Some(Some("3".to_owned())));
        let payload = Payload::Json(serde_json::json!({"a": 1}));
        let Some(Frame::Text(text)) =
            Serializer::V1.encode(&out(Kind::Push, Some("9"), None, "e", &payload))
        else {
            panic!()
        };
        let value: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(
            value,
            serde_json::json!({"topic": "room:lobby", "event": "e", "ref": null, "payload": {"a": 1}})
        );
    }

    #[test]
    fn binary_frames_match_the_phoenix_test_vectors() {
        // From phoenix's serializer_test.js: push with join_ref "0", ref "1", topic "t", event "e", payload 01.
        let message = Serializer::V2
            .decode_binary(b"\0\x01\x01\x01\x0101te\x01")
            .ok();
        assert_eq!(
            message,
            Some(Message {
                join_ref: Some("0".into()),
                msg_ref: Some("1".into()),
                topic: "t".into(),
                event: "e".into(),
                payload: Payload::Binary(Bytes::from_static(b"\x01")),
            })
        );
        // Reply with join_ref "100", ref "12", topic "top", status "ok", payload 01 01.
        let payload = Payload::Binary(Bytes::from_static(b"\x01\x01"));
        let reply = Outgoing {
            kind: Kind::Reply,
            join_ref: Some("100"),
            msg_ref: Some("12"),
            topic: "top",
            event: "ok",
            payload: &payload,
        };
        assert_eq!(
            Serializer::V2.encode(&reply),
            Some(Frame::Binary(Bytes::from_static(
                b"\x01\x03\x02\x03\x0210012topok\x01\x01"
            )))
        );
        assert!(Serializer::V2.decode_binary(b"\0\x05\x01").is_err());
        assert!(Serializer::V2.decode_binary(b"\x01\0\0\0\0").is_err());
        let long = "x".repeat(256);
        let push = Outgoing {
            kind: Kind::Push,
            join_ref: None,
            msg_ref: None,
            topic: &long,
            event: "e",
            payload: &payload,
        };
        assert_eq!(Serializer::V2.encode(&push), None);
    }
}
