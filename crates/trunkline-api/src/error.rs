//! Every error the API answers with: a status and a JSON body
//! `{"error":{"code":"...","message":"..."}}` whose `code` is stable.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::header::{CONTENT_RANGE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer. Its [`code`](ApiError::code) is one of the stable
/// names in [`CODES`]; its message is for people and may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// `bytes */{length}` for a 416.
    content_range: Option<u64>,
}

/// Every error code, with the status it comes with.
pub const CODES: &[(&str, u16)] = &[
    ("bad_request", 400),
    ("unauthorized", 401),
    ("forbidden", 403),
    ("not_found", 404),
    ("method_not_allowed", 405),
    ("payload_too_large", 413),
    ("unsupported_media_type", 415),
    ("range_not_satisfiable", 416),
    ("invalid_state", 409),
    ("media_not_anchored", 409),
    ("internal", 500),
    ("refused", 502),
    ("unavailable", 503),
    ("timeout", 504),
];

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            content_range: None,
        }
    }

    /// 400 `bad_request`: a parameter or body that does not parse.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401 `unauthorized`: no API key, or one nobody configured.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`: a key whose scope is too small, or an address the
    /// AMI allow-list does not hold.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found`: no such route, record or recording.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405 `method_not_allowed` (the `Allow` header says which are).
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take that method (see the Allow header)",
        )
    }

    /// 413 `payload_too_large`: a body over the limit (2 MiB).
    pub fn payload_too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 416 `range_not_satisfiable`: a `Range` past the end of a file of
    /// `length` bytes.
    pub fn range_not_satisfiable(length: u64) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("the range is outside the file's {length} bytes"),
        );
        error.content_range = Some(length);
        error
    }

    /// 500 `internal`: something on our side failed; the details are
    /// logged, not sent.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"trunkline\""),
            );
        }
        if let Some(length) = self.content_range
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{length}"))
        {
            headers.insert(CONTENT_RANGE, value);
        }
        response
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::bad_request(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::bad_request(rejection.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(rejection.body_text()),
            _ => ApiError::bad_request(rejection.body_text()),
        }
    }
}

impl From<trunkline_engine::CommandError> for ApiError {
    fn from(error: trunkline_engine::CommandError) -> ApiError {
        use trunkline_engine::CommandError as E;
        let message = error.to_string();
        let (status, code) = match error {
            E::NoSuchCall | E::Ended => (StatusCode::NOT_FOUND, "not_found"),
            E::WrongState(_) => (StatusCode::CONFLICT, "invalid_state"),
            E::MediaNotAnchored => (StatusCode::CONFLICT, "media_not_anchored"),
            E::Refused(_) => (StatusCode::BAD_GATEWAY, "refused"),
            E::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            E::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            E::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        ApiError::new(status, code, message)
    }
}

/// The answer to a path no route serves.
pub(crate) async fn no_route() -> ApiError {
    ApiError::not_found("no such route (see /api/v1/openapi.json)")
}

/// The answer to a method a route does not take.
pub(crate) async fn wrong_method() -> ApiError {
    ApiError::method_not_allowed()
}

/// A handler's panic, as a 500 (the connection and the server go on).
pub(crate) fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("an API handler panicked");
    ApiError::internal("the server failed to answer").into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_constructor_uses_a_listed_code_and_its_status() {
        for error in [
            ApiError::bad_request("x"),
            ApiError::unauthorized("x"),
            ApiError::forbidden("x"),
            ApiError::not_found("x"),
            ApiError::method_not_allowed(),
            ApiError::payload_too_large("x"),
            ApiError::range_not_satisfiable(3),
            ApiError::internal("x"),
        ] {
            let listed = CODES.iter().find(|(code, _)| *code == error.code());
            assert_eq!(
                listed.map(|(_, status)| *status),
                Some(error.status().as_u16()),
                "{error}"
            );
        }
    }

    #[test]
    fn a_416_says_the_length() {
        let response = ApiError::range_not_satisfiable(44).into_response();
        assert_eq!(response.status(), 416);
        assert_eq!(response.headers()[CONTENT_RANGE], "bytes */44");
    }
}
