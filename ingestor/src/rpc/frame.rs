//! Parsing of incoming JSON-RPC frames: a response to one of our requests, or a
//! subscription notification. Anything else is a [`FrameError`], never a panic.

use serde_json::Value;

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
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// The answer to request `id`.
    Response {
        /// The request id we sent.
        id: u64,
        /// `result`, or the node's `error` object.
        result: Result<Value, NodeError>,
    },
    /// An `eth_subscription` notification.
    Notification {
        /// The subscription id the node gave us.
        subscription: String,
        /// The notification payload.
        result: Value,
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

/// Parses one text frame.
pub fn parse_frame(text: &str) -> Result<Frame, FrameError> {
    let v: Value = serde_json::from_str(text).map_err(|e| FrameError::NotJson(e.to_string()))?;
    parse_value(v)
}

/// Parses an HTTP answer: one response object, or the array that answers a batch.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Frame>, FrameError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| FrameError::NotJson(e.to_string()))?;
    match v {
        Value::Array(items) => items.into_iter().map(parse_value).collect(),
        single => Ok(vec![parse_value(single)?]),
    }
}

fn parse_value(v: Value) -> Result<Frame, FrameError> {
    let Value::Object(mut obj) = v else {
        return Err(FrameError::NotObject);
    };
    if obj.get("method").and_then(Value::as_str) == Some("eth_subscription") {
        let params = obj.remove("params").ok_or(FrameError::BadNotification)?;
        let Value::Object(mut params) = params else {
            return Err(FrameError::BadNotification);
        };
        let subscription = match params.remove("subscription") {
            Some(Value::String(s)) => s,
            _ => return Err(FrameError::BadNotification),
        };
        let result = params.remove("result").ok_or(FrameError::BadNotification)?;
        return Ok(Frame::Notification {
            subscription,
            result,
        });
    }
    let id = obj
        .get("id")
        .and_then(Value::as_u64)
        .ok_or(FrameError::BadId)?;
    match (obj.remove("result"), obj.remove("error")) {
        (Some(result), None) => Ok(Frame::Response {
            id,
            result: Ok(result),
        }),
        (None, Some(err)) => {
            let code = err
                .get("code")
                .and_then(Value::as_i64)
                .ok_or(FrameError::BadError(id))?;
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .ok_or(FrameError::BadError(id))?
                .to_owned();
            Ok(Frame::Response {
                id,
                result: Err(NodeError { code, message }),
            })
        }
        _ => Err(FrameError::BadResponse(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn responses_and_errors() {
        assert_eq!(
            parse_frame(r#"{"jsonrpc":"2.0","id":7,"result":"0x1"}"#),
            Ok(Frame::Response {
                id: 7,
                result: Ok(json!("0x1"))
            })
        );
        assert_eq!(
            parse_frame(r#"{"jsonrpc":"2.0","id":8,"result":null}"#),
            Ok(Frame::Response {
                id: 8,
                result: Ok(Value::Null)
            })
        );
        assert_eq!(
            parse_frame(r#"{"jsonrpc":"2.0","id":9,"error":{"code":-32005,"message":"too many"}}"#),
            Ok(Frame::Response {
                id: 9,
                result: Err(NodeError {
                    code: -32005,
                    message: "too many".into()
                })
            })
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
    fn notifications() {
        let f = parse_frame(
            r#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xab","result":{"number":"0x1"}}}"#,
        );
        assert_eq!(
            f,
            Ok(Frame::Notification {
                subscription: "0xab".into(),
                result: json!({"number": "0x1"})
            })
        );
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        let cases = [
            ("", "not JSON"),
            ("{", "not JSON"),
            ("[1,2]", "not a JSON object"),
            ("42", "not a JSON object"),
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
