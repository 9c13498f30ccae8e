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
    /// A body streamed as it is produced (chunked), sent instead of `body` when set.
    pub stream: Option<StreamBody>,
}

/// The chunks of a streamed body; the stream ends the response when it ends.
pub struct StreamBody(
    pub  std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + Sync>,
    >,
);

impl std::fmt::Debug for StreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamBody")
    }
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
            stream: None,
        })
    }

    pub fn bytes(body: Vec<u8>, content_type: Option<&'static str>) -> Reply {
        Reply {
            status: StatusCode::OK,
            headers: Vec::new(),
            content_type,
            body,
            stream: None,
        }
    }

    pub fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            content_type: None,
            body: Vec::new(),
            stream: None,
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

    /// `X-Consul-Results-Filtered-By-ACLs: true` when ACLs removed results for a caller that
    /// named a token (Consul never tells the anonymous caller).
    pub fn filtered_by_acls(self, caller: &super::acl::Caller, removed: bool) -> Reply {
        if removed && caller.named {
            self.header("X-Consul-Results-Filtered-By-ACLs", "true")
        } else {
            self
        }
    }

    /// A 200 whose body is `stream`'s chunks, sent as they come.
    pub fn stream(
        content_type: Option<&'static str>,
        stream: impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>>
            + Send
            + Sync
            + 'static,
    ) -> Reply {
        Reply {
            stream: Some(StreamBody(Box::pin(stream))),
            ..Reply::bytes(Vec::new(), content_type)
        }
    }

    pub fn into_response(self) -> warp::reply::Response {
        let mut response = match self.stream {
            Some(StreamBody(stream)) => {
                use warp::Reply as _;
                warp::reply::stream(stream).into_response()
            }
            None => warp::reply::Response::new(self.body.into()),
        };
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
            stream: None,
        };
        if let Some(allow) = err.allow {
            reply = reply.header("Allow", allow);
        }
        reply
    }
}
