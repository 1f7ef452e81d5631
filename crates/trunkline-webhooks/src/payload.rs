//! What the outbox delivers: registration events as JSON, and CDR pushes
//! as `multipart/form-data` with the call's recording.

use crate::Error;
use bytes::Bytes;
use std::fmt;
use std::path::{Path, PathBuf};
use trunkline_cdr::Cdr;
use trunkline_registrar::RegistrationEvent;

/// The form field of a CDR push holding the record's JSON.
pub const CALLLOG_FIELD: &str = "calllog.json";

/// The form field of a CDR push holding the recording (`audio/wav`).
pub const MEDIA_FIELD: &str = "media_audio-0";

/// A delivery's identifier: a UUID, the same on every attempt of the
/// delivery (sent as `X-Trunkline-Delivery`), so receivers can drop
/// repeats.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryId(String);

impl DeliveryId {
    /// A fresh random (version 4) UUID.
    pub fn generate() -> DeliveryId {
        DeliveryId(uuid::Uuid::new_v4().to_string())
    }

    /// The id as stored and sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id read back from the outbox.
    pub(crate) fn stored(id: String) -> DeliveryId {
        DeliveryId(id)
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The body of one outbox delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(pub(crate) Body);

/// How a payload is sent, and so how the outbox stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// An `application/json` body.
    Json(Vec<u8>),
    /// A `multipart/form-data` body: the record's JSON and, if any, the
    /// recording read from its file when the delivery is sent.
    CdrPush {
        calllog: Vec<u8>,
        recording: Option<PathBuf>,
    },
}

impl Payload {
    /// A registration event for the locator webhook, posted as JSON.
    pub fn registration(event: &RegistrationEvent) -> Result<Payload, Error> {
        Ok(Payload(Body::Json(serde_json::to_vec(event)?)))
    }

    /// A CDR push: `calllog.json` with `cdr`, and `media_audio-0` with the
    /// WAV file at `cdr.recording` when `with_media` is set and the call
    /// was recorded. The file is read when the delivery is sent, so it
    /// must stay until then; if it is gone by then, the delivery is
    /// dead-lettered rather than sent without it.
    pub fn cdr_push(cdr: &Cdr, with_media: bool) -> Result<Payload, Error> {
        Ok(Payload(Body::CdrPush {
            calllog: serde_json::to_vec(cdr)?,
            recording: cdr
                .recording
                .as_ref()
                .filter(|_| with_media)
                .map(PathBuf::from),
        }))
    }

    /// The `Content-Type` and the bytes to send.
    pub(crate) async fn encode(&self, delivery: &DeliveryId) -> Result<(String, Bytes), Error> {
        match &self.0 {
            Body::Json(json) => Ok(("application/json".to_owned(), Bytes::from(json.clone()))),
            Body::CdrPush { calllog, recording } => {
                let media = match recording {
                    Some(path) => {
                        let wav =
                            tokio::fs::read(path)
                                .await
                                .map_err(|source| Error::Recording {
                                    path: path.clone(),
                                    source,
                                })?;
                        Some((file_name(path), wav))
                    }
                    None => None,
                };
                // Derived from the delivery id: unique, and never inside
                // a JSON text or (in practice) a WAV file's samples.
                let boundary = format!("trunkline-{delivery}");
                let body = form(
                    &boundary,
                    calllog,
                    media.as_ref().map(|(n, w)| (n.as_str(), w.as_slice())),
                );
                Ok((
                    format!("multipart/form-data; boundary={boundary}"),
                    Bytes::from(body),
                ))
            }
        }
    }
}

/// The recording's file name for the form, without the characters that
/// would end a quoted parameter.
fn file_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(|| "recording.wav".into(), |n| n.to_string_lossy());
    name.replace(['"', '\\', '\r', '\n'], "_")
}

/// A `multipart/form-data` body (RFC 7578) with the record and maybe the
/// recording.
fn form(boundary: &str, calllog: &[u8], media: Option<(&str, &[u8])>) -> Vec<u8> {
    let media_len = media.map_or(0, |(_, wav)| wav.len());
    let mut body = Vec::with_capacity(calllog.len() + media_len + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{CALLLOG_FIELD}\"\r\n\
             Content-Type: application/json\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(calllog);
    if let Some((file_name, wav)) = media {
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{MEDIA_FIELD}\"; \
                 filename=\"{file_name}\"\r\nContent-Type: audio/wav\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(wav);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_as_written() {
        let body = form("B", b"{}", Some(("call.wav", b"RIFF")));
        let expected = "--B\r\nContent-Disposition: form-data; name=\"calllog.json\"\r\n\
                        Content-Type: application/json\r\n\r\n{}\r\n\
                        --B\r\nContent-Disposition: form-data; name=\"media_audio-0\"; \
                        filename=\"call.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--B--\r\n";
        assert_eq!(String::from_utf8_lossy(&body), expected);
        assert_eq!(file_name(Path::new("/rec/call \"1\".wav")), "call _1_.wav");
        let bare = form("B", b"{}", None);
        assert!(String::from_utf8_lossy(&bare).ends_with("{}\r\n--B--\r\n"));
    }
}
