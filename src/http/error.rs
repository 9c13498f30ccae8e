//! API errors as Consul sends them: a status and a plain-text body. This is the only place a
//! `StoreError` meets HTTP.

use crate::store::StoreError;
use warp::http::StatusCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Methods to list in `Allow` (405 only).
    pub allow: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            allow: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
    pub fn method_not_allowed(method: &str, allow: String) -> Self {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("method {method} not allowed"),
            allow: Some(allow),
        }
    }
}

/// A `?filter` that doesn't parse or doesn't fit the data is the client's error; an item that
/// can't be rendered to be filtered is ours.
impl From<crate::filter::FilterError> for ApiError {
    fn from(err: crate::filter::FilterError) -> Self {
        match err {
            crate::filter::FilterError::Render(_) => ApiError::internal(err.to_string()),
            _ => ApiError::bad_request(err.to_string()),
        }
    }
}

/// Consul answers an unknown token and a missing permission with a 403 and the error's text.
impl From<crate::acl::PermissionDenied> for ApiError {
    fn from(err: crate::acl::PermissionDenied) -> Self {
        ApiError::forbidden(err.to_string())
    }
}

impl From<crate::agent::acl::ResolveError> for ApiError {
    fn from(err: crate::agent::acl::ResolveError) -> Self {
        match err {
            crate::agent::acl::ResolveError::NotFound => ApiError::forbidden(err.to_string()),
            crate::agent::acl::ResolveError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Invalid(msg) => ApiError::bad_request(msg),
            StoreError::Rejected(msg) => ApiError::internal(msg),
            StoreError::Closed => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "agent is shutting down")
            }
            other => {
                tracing::error!(error = %other, "store fault");
                ApiError::internal(other.to_string())
            }
        }
    }
}
