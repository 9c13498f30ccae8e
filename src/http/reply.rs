//! Building responses: JSON (compact, or Go's 4-space indent plus newline with `?pretty`),
//! raw bytes, and the read metadata headers every read carries.

use super::error::ApiError;
use serde::Serialize;
use warp::http::{HeaderValue, StatusCode};

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json<T: Serialize + ?Sized>(value: &T, pretty: bool) -> Result<Reply, ApiError> {
        let body = if pretty {
            let mut out = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
            value
                .serialize(&mut ser)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            out.push(b'\n');
            out
        } else {
            serde_json::to_vec(value).map_err(|e| ApiError::internal(e.to_string()))?
        };
        Ok(Reply {
            status: StatusCode::OK,
            headers: Vec::new(),
            content_type: Some("application/json"),
            body,
        })
    }

    pub fn bytes(body: Vec<u8>, content_type: Option<&'static str>) -> Reply {
        Reply {
            status: StatusCode::OK,
            headers: Vec::new(),
            content_type,
            body,
        }
    }

    pub fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            content_type: None,
            body: Vec::new(),
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Reply {
        self.status = status;
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds the headers of a read: `X-Consul-Index` (never below 1), and the leadership facts of
    /// a single node that is always its own leader.
    pub fn read_meta(self, index: u64) -> Reply {
        self.header("X-Consul-Index", index.max(1).to_string())
            .header("X-Consul-KnownLeader", "true")
            .header("X-Consul-LastContact", "0")
            .header("X-Consul-Query-Backend", "blocking-query")
    }

    pub fn into_response(self) -> warp::reply::Response {
        let mut response = warp::reply::Response::new(self.body.into());
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if let Some(ct) = self.content_type {
            headers.insert("Content-Type", HeaderValue::from_static(ct));
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.append(name, v);
            }
        }
        response
    }
}

impl From<ApiError> for Reply {
    fn from(err: ApiError) -> Reply {
        let mut reply = Reply {
            status: err.status,
            headers: Vec::new(),
            content_type: Some("text/plain; charset=utf-8"),
            body: err.message.into_bytes(),
        };
        if let Some(allow) = err.allow {
            reply = reply.header("Allow", allow);
        }
        reply
    }
}
