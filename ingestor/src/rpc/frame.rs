//! Parsing of incoming JSON-RPC frames: a response to one of our requests, or a
//! subscription notification. Anything else is a [`FrameError`], never a panic.
//!
//! The envelope is read with its members borrowed from the frame's text; a result is kept
//! as its raw JSON text ([`RawValue`]) for the method's own typed parser (`types`), so no
//! `serde_json::Value` tree is built for a result.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::json::{Field, Obj, kind_of};

/// A JSON-RPC error object returned by the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node error {code}: {message}")]
pub struct NodeError {
    /// JSON-RPC error code.
    pub code: i64,
    /// The node's message (kept out of metric labels).
    pub message: String,
}

/// One parsed incoming frame.
#[derive(Debug, Clone)]
pub enum Frame {
    /// The answer to request `id`.
    Response {
        /// The request id we sent.
        id: u64,
        /// `result` as JSON text, or the node's `error` object.
        result: Result<Box<RawValue>, NodeError>,
    },
    /// An error object with a `null` (or no) id: the node could not tie it to one request.
    /// JSON-RPC prescribes this for a batch it will not take (Erigon's "batch limit 100
    /// exceeded") and for a request it cannot read.
    Unmatched(NodeError),
    /// An `eth_subscription` notification.
    Notification {
        /// The subscription id the node gave us.
        subscription: String,
        /// The notification payload, as JSON text.
        result: Box<RawValue>,
    },
}

/// An incoming frame that is not valid JSON-RPC 2.0 as we use it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not JSON at all.
    #[error("frame is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object (nor, where a batch was sent, an array of objects).
    #[error("frame is not a JSON object")]
    NotObject,
    /// An object, but a malformed one (a member given twice, say).
    #[error("frame is a malformed JSON object: {0}")]
    Malformed(String),
    /// A response without a numeric id.
    #[error("response has no numeric id")]
    BadId,
    /// A response with both or neither of `result` and `error`.
    #[error("response {0} has neither exactly one of `result` and `error`")]
    BadResponse(u64),
    /// An `error` member that is not a JSON-RPC error object.
    #[error("response {0} has a malformed `error` object")]
    BadError(u64),
    /// A notification without `params.subscription` and `params.result`.
    #[error("malformed subscription notification")]
    BadNotification,
}

/// A member that is present, even as `null` (which `Option` alone reads as absent).
fn present<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<&'a RawValue>, D::Error> {
    <&'a RawValue>::deserialize(d).map(Some)
}

/// The members of a frame we look at, unparsed. (Read through [`Obj`]: serde would also
/// read a struct from an array, by position.)
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default)]
    subscription: Option<Field<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ErrorObject<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message: Option<Field<'a>>,
}

/// Parses one text frame.
pub fn parse_frame(text: &str) -> Result<Frame, FrameError> {
    match serde_json::from_str::<Obj<Envelope>>(text) {
        Ok(Obj::Object(envelope)) => parse_envelope(envelope),
        Ok(Obj::Other(_)) => Err(FrameError::NotObject),
        Err(e) => Err(not_frame(text, &e)),
    }
}

/// Parses an HTTP answer: one response object, or the array that answers a batch.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Frame>, FrameError> {
    let text = std::str::from_utf8(body).map_err(|e| FrameError::NotJson(e.to_string()))?;
    if kind_of(text) == "an array" {
        // One pass over the answer: each element is read as an envelope where it stands.
        let items: Vec<Obj<Envelope>> = serde_json::from_str(text).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                FrameError::NotJson(e.to_string())
            } else {
                FrameError::Malformed(e.to_string())
            }
        })?;
        items
            .into_iter()
            .map(|item| match item {
                Obj::Object(envelope) => parse_envelope(envelope),
                Obj::Other(_) => Err(FrameError::NotObject),
            })
            .collect()
    } else {
        Ok(vec![parse_frame(text)?])
    }
}

fn not_frame(text: &str, e: &serde_json::Error) -> FrameError {
    match kind_of(text) {
        _ if e.is_syntax() || e.is_eof() => FrameError::NotJson(e.to_string()),
        "an object" => FrameError::Malformed(e.to_string()),
        _ => FrameError::NotObject,
    }
}

fn parse_envelope(env: Envelope<'_>) -> Result<Frame, FrameError> {
    let subscription_note = env
        .method
        .and_then(|m| serde_json::from_str::<&str>(m.get()).ok())
        == Some("eth_subscription");
    if subscription_note {
        let params = env.params.ok_or(FrameError::BadNotification)?;
        let Ok(Obj::Object(params)) = serde_json::from_str::<Obj<Params>>(params.get()) else {
            return Err(FrameError::BadNotification);
        };
        let subscription = match params.subscription {
            Some(Field::Str(s)) => s.into_owned(),
            _ => return Err(FrameError::BadNotification),
        };
        let result = params.result.ok_or(FrameError::BadNotification)?;
        return Ok(Frame::Notification {
            subscription,
            result: result.to_owned(),
        });
    }
    let no_id = env.id.is_none_or(|id| id.get().trim() == "null");
    if no_id
        && env.result.is_none()
        && let Some(err) = env.error
    {
        return node_error(err, 0).map(Frame::Unmatched);
    }
    let id = env
        .id
        .and_then(|id| serde_json::from_str::<u64>(id.get()).ok())
        .ok_or(FrameError::BadId)?;
    match (env.result, env.error) {
        (Some(result), None) => Ok(Frame::Response {
            id,
            result: Ok(result.to_owned()),
        }),
        (None, Some(err)) => Ok(Frame::Response {
            id,
            result: Err(node_error(err, id)?),
        }),
        _ => Err(FrameError::BadResponse(id)),
    }
}

/// A JSON-RPC error object (of the response to `id`, for the error message).
fn node_error(err: &RawValue, id: u64) -> Result<NodeError, FrameError> {
    let Ok(Obj::Object(err)) = serde_json::from_str::<Obj<ErrorObject>>(err.get()) else {
        return Err(FrameError::BadError(id));
    };
    let code = err
        .code
        .and_then(|c| serde_json::from_str::<i64>(c.get()).ok())
        .ok_or(FrameError::BadError(id))?;
    match err.message {
        Some(Field::Str(m)) => Ok(NodeError {
            code,
            message: m.into_owned(),
        }),
        _ => Err(FrameError::BadError(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result_text(frame: Result<Frame, FrameError>) -> (u64, Result<String, NodeError>) {
        match frame {
            Ok(Frame::Response { id, result }) => (id, result.map(|r| r.get().to_owned())),
            other => panic!("not a response: {other:?}"),
        }
    }

    #[test]
    fn responses_and_errors() {
        assert_eq!(
            result_text(parse_frame(r#"{"jsonrpc":"2.0","id":7,"result":"0x1"}"#)),
            (7, Ok(r#""0x1""#.into()))
        );
        assert_eq!(
            result_text(parse_frame(r#"{"jsonrpc":"2.0","id":8,"result":null}"#)),
            (8, Ok("null".into()))
        );
        assert_eq!(
            result_text(parse_frame(
                r#"{"jsonrpc":"2.0","id":9,"error":{"code":-32005,"message":"too many","data":{}}}"#
            )),
            (
                9,
                Err(NodeError {
                    code: -32005,
                    message: "too many".into()
                })
            )
        );
    }

    #[test]
    fn batches() {
        let frames = parse_batch(
            br#"[{"jsonrpc":"2.0","id":2,"result":"0x2"},{"jsonrpc":"2.0","id":1,"error":{"code":429,"message":"slow down"}}]"#,
        )
        .expect("batch");
        assert_eq!(frames.len(), 2);
        assert!(matches!(
            frames[1],
            Frame::Response {
                id: 1,
                result: Err(_)
            }
        ));
        assert_eq!(
            parse_batch(br#"{"id":3,"result":null}"#)
                .expect("single")
                .len(),
            1
        );
        assert!(parse_batch(b"[1]").is_err());
        assert!(parse_batch(b"<html>").is_err());
    }

    #[test]
    fn an_error_without_an_id_is_unmatched_not_malformed() {
        // Erigon's refusal of a batch, as the JSON-RPC spec prescribes it.
        let refusal = br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"batch limit 100 exceeded: 142 requests given"}}"#;
        let frames = parse_batch(refusal).expect("a refusal is a frame");
        assert!(
            matches!(&frames[..], [Frame::Unmatched(e)] if e.code == -32000 && e.message.starts_with("batch limit")),
            "{frames:?}"
        );
        let no_id =
            parse_frame(r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"}}"#);
        assert!(matches!(no_id, Ok(Frame::Unmatched(_))), "{no_id:?}");
        // A null id with a result is still malformed.
        assert!(parse_frame(r#"{"jsonrpc":"2.0","id":null,"result":1}"#).is_err());
    }

    #[test]
    fn notifications() {
        let f = parse_frame(
            r#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xab","result":{"number":"0x1"}}}"#,
        );
        let Ok(Frame::Notification {
            subscription,
            result,
        }) = f
        else {
            panic!("not a notification: {f:?}");
        };
        assert_eq!(
            (subscription.as_str(), result.get()),
            ("0xab", r#"{"number":"0x1"}"#)
        );
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        let cases = [
            ("", "not JSON"),
            ("{", "not JSON"),
            ("[1,2]", "not a JSON object"),
            ("42", "not a JSON object"),
            (r#"{"id":1,"id":2,"result":1}"#, "malformed JSON object"),
            (r#"{"id":"abc","result":1}"#, "no numeric id"),
            (r#"{"id":-1,"result":1}"#, "no numeric id"),
            (r#"{"result":1}"#, "no numeric id"),
            (r#"{"id":1}"#, "neither"),
            (
                r#"{"id":1,"result":1,"error":{"code":1,"message":"x"}}"#,
                "neither",
            ),
            (r#"{"id":1,"error":"boom"}"#, "malformed `error`"),
            (
                r#"{"id":1,"error":{"code":"x","message":"m"}}"#,
                "malformed `error`",
            ),
            (
                r#"{"method":"eth_subscription","params":[]}"#,
                "notification",
            ),
            (
                r#"{"method":"eth_subscription","params":{"result":1}}"#,
                "notification",
            ),
            (r#"{"method":"eth_subscription"}"#, "notification"),
        ];
        for (input, want) in cases {
            let err = parse_frame(input).expect_err(input);
            assert!(err.to_string().contains(want), "{input:?} gave {err}");
        }
    }
}
