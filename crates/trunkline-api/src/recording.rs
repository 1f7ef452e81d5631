//! `GET /console/call-records/{id}/recording`: the call's WAV streamed
//! from disk, whole or one byte range.

use crate::Shared;
use crate::error::ApiError;
use crate::records::record;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use std::io::SeekFrom;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

/// What a `Range` header asks of a file of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Range {
    /// The whole file: no header, or one this server ignores (another
    /// unit, several ranges, bad syntax), as RFC 9110 §14.2 allows.
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// Nothing of the file (416).
    Unsatisfiable,
}

/// Reads one `bytes=` range against a file of `length` bytes.
pub(crate) fn parse_range(header: Option<&str>, length: u64) -> Range {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Range::Whole;
    };
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match number(last) {
            Some(0) => Range::Unsatisfiable,
            Some(_) if length == 0 => Range::Unsatisfiable,
            Some(suffix) => Range::Part {
                start: length.saturating_sub(suffix),
                end: length - 1,
            },
            None => Range::Whole,
        },
        // `bytes=A-`: from A to the end.
        (false, true) => match number(first) {
            Some(start) if start >= length => Range::Unsatisfiable,
            Some(start) => Range::Part {
                start,
                end: length - 1,
            },
            None => Range::Whole,
        },
        // `bytes=A-B`.
        (false, false) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start <= end => {
                if start >= length {
                    Range::Unsatisfiable
                } else {
                    Range::Part {
                        start,
                        end: end.min(length - 1),
                    }
                }
            }
            _ => Range::Whole,
        },
        (true, true) => Range::Whole,
    }
}

/// Bytes read from disk per chunk of the response.
const CHUNK: usize = 64 * 1024;

/// `GET /console/call-records/{id}/recording`
pub(crate) async fn recording(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let cdr = record(&shared, id).await?;
    let Some(path) = cdr.recording.as_deref() else {
        return Err(ApiError::not_found(format!(
            "call record {:?} has no recording",
            cdr.id.as_str()
        )));
    };
    let Some(root) = &shared.recordings else {
        return Err(ApiError::not_found("recordings are not served here"));
    };
    let missing = || {
        ApiError::not_found(format!(
            "the recording of {:?} is not on disk",
            cdr.id.as_str()
        ))
    };
    // Only files under the recordings directory are served, whatever a
    // shared store's record says.
    let (Ok(root), Ok(file_path)) = (
        tokio::fs::canonicalize(root).await,
        tokio::fs::canonicalize(path).await,
    ) else {
        return Err(missing());
    };
    if !file_path.starts_with(&root) {
        tracing::warn!(
            cdr = cdr.id.as_str(),
            path,
            "recording outside the recordings directory not served"
        );
        return Err(missing());
    }
    let mut file = tokio::fs::File::open(&file_path)
        .await
        .map_err(|_| missing())?;
    let metadata = file.metadata().await.map_err(|_| missing())?;
    if !metadata.is_file() {
        return Err(missing());
    }
    let length = metadata.len();
    let range = headers.get(RANGE).and_then(|v| v.to_str().ok());
    let (status, start, count) = match parse_range(range, length) {
        Range::Whole => (StatusCode::OK, 0, length),
        Range::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Range::Unsatisfiable => return Err(ApiError::range_not_satisfiable(length)),
    };
    if start > 0 {
        file.seek(SeekFrom::Start(start)).await.map_err(|e| {
            tracing::error!(path = %file_path.display(), "recording: {e}");
            ApiError::internal("the recording could not be read")
        })?;
    }
    let body = Body::from_stream(ReaderStream::with_capacity(file.take(count), CHUNK));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(count));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(value) =
            HeaderValue::from_str(&format!("bytes {start}-{}/{length}", start + count - 1))
    {
        headers.insert(CONTENT_RANGE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let part = |start, end| Range::Part { start, end };
        for (header, expected) in [
            (None, Range::Whole),
            (Some("bytes=0-9"), part(0, 9)),
            (Some("bytes=10-"), part(10, 99)),
            (Some("bytes=-10"), part(90, 99)),
            (Some("bytes=-1000"), part(0, 99)),
            (Some("bytes=90-1000"), part(90, 99)),
            (Some("bytes=99-99"), part(99, 99)),
            (Some("bytes=100-"), Range::Unsatisfiable),
            (Some("bytes=100-200"), Range::Unsatisfiable),
            (Some("bytes=-0"), Range::Unsatisfiable),
            (Some("bytes=9-1"), Range::Whole),
            (Some("bytes=0-1,5-6"), Range::Whole),
            (Some("items=0-1"), Range::Whole),
            (Some("bytes=x-1"), Range::Whole),
            (Some("bytes=+1-2"), Range::Whole),
            (Some("bytes=-"), Range::Whole),
            (Some("bytes=99999999999999999999999-"), Range::Whole),
        ] {
            assert_eq!(parse_range(header, 100), expected, "{header:?}");
        }
        assert_eq!(parse_range(Some("bytes=0-"), 0), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-5"), 0), Range::Unsatisfiable);
    }
}
