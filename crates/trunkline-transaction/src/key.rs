//! Transaction matching (RFC 3261 §17.1.3, §17.2.3) and the other indexes
//! of the transaction table. Every key part shares the message's buffer.

use bytestring::ByteString;
use trunkline_sip::{HeaderName, Message, Method};

/// A client transaction: the branch we put in the top Via, and the CSeq
/// method (a CANCEL shares its INVITE's branch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    pub(crate) branch: ByteString,
    pub(crate) method: Method,
}

impl ClientKey {
    /// The key a response carries. `None` without a branch or CSeq method.
    pub(crate) fn of_response(response: &Message) -> Option<ClientKey> {
        Some(ClientKey {
            branch: response.share(response.branch()?),
            method: Method::parse(response.cseq()?.method)?,
        })
    }
}

/// A server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    /// RFC 3261 peers: branch, `sent-by` and method, an ACK counting as
    /// the INVITE it acknowledges.
    Branch {
        branch: ByteString,
        sent_by: ByteString,
        method: Method,
    },
    /// RFC 2543 peers, whose branch lacks the magic cookie: Request-URI,
    /// From tag, Call-ID, CSeq number, the whole top Via and the method.
    /// The To tag is left out so that the ACK for a non-2xx response, which
    /// carries the tag of that response, finds its INVITE.
    Legacy {
        request_uri: ByteString,
        from_tag: Option<ByteString>,
        call_id: ByteString,
        cseq: u32,
        via: ByteString,
        method: Method,
    },
}

impl ServerKey {
    /// The key of a request, with its method replaced by `method` (ACK and
    /// CANCEL look up their INVITE this way). `None` if a header the key
    /// needs is missing.
    pub(crate) fn of_request(request: &Message, method: Method) -> Option<ServerKey> {
        let via = request.via()?;
        if via.has_rfc3261_branch() {
            let top = top_via(request)?;
            return Some(ServerKey::Branch {
                branch: request.share(via.branch()?),
                sent_by: request.share(sent_by(top)),
                method,
            });
        }
        Some(ServerKey::Legacy {
            request_uri: request.share(request.uri_str()?),
            from_tag: request.from_tag().map(|t| request.share(t)),
            call_id: request.share(request.call_id()?),
            cseq: request.cseq()?.seq,
            via: request.share(top_via(request)?),
            method,
        })
    }
}

/// A request without a To tag, by From tag, Call-ID and CSeq: a second
/// request with the same values but another transaction key reached us
/// by another path, and gets 482 (RFC 3261 §8.2.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MergeKey {
    from_tag: ByteString,
    call_id: ByteString,
    cseq: u32,
    method: ByteString,
}

impl MergeKey {
    pub(crate) fn of_request(request: &Message) -> Option<MergeKey> {
        if request.to_tag().is_some() {
            return None;
        }
        let cseq = request.cseq()?;
        Some(MergeKey {
            from_tag: request.share(request.from_tag()?),
            call_id: request.share(request.call_id()?),
            cseq: cseq.seq,
            method: request.share(cseq.method),
        })
    }
}

/// The ACK for a 2xx is a transaction of its own (new branch); it finds
/// the INVITE server transaction retransmitting that 2xx by dialog and
/// CSeq number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AckKey {
    call_id: ByteString,
    from_tag: Option<ByteString>,
    to_tag: Option<ByteString>,
    cseq: u32,
}

impl AckKey {
    pub(crate) fn of(message: &Message) -> Option<AckKey> {
        Some(AckKey {
            call_id: message.share(message.call_id()?),
            from_tag: message.from_tag().map(|t| message.share(t)),
            to_tag: message.to_tag().map(|t| message.share(t)),
            cseq: message.cseq()?.seq,
        })
    }
}

/// The first `via-parm` of the first Via line, as written.
pub(crate) fn top_via(message: &Message) -> Option<&str> {
    let line = message.header(HeaderName::Via)?;
    let mut quoted = false;
    let end = line
        .bytes()
        .position(|c| {
            quoted ^= c == b'"';
            c == b',' && !quoted
        })
        .unwrap_or(line.len());
    Some(line[..end].trim_end())
}

/// `sent-by` (host and port) of a `via-parm`.
pub(crate) fn sent_by(via: &str) -> &str {
    // `SIP / 2.0 / UDP host:port;params`: the address follows the
    // whitespace after the transport token.
    let after_protocol = via
        .match_indices('/')
        .nth(1)
        .map_or(via, |(slash, _)| via[slash + 1..].trim_start());
    let after_transport = after_protocol
        .find([' ', '\t'])
        .map_or("", |ws| after_protocol[ws..].trim_start());
    let end = after_transport
        .find([';', ' ', '\t'])
        .unwrap_or(after_transport.len());
    &after_transport[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_by_is_host_and_port() {
        assert_eq!(
            sent_by("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"),
            "192.0.2.1:5060"
        );
        assert_eq!(sent_by("SIP / 2.0 / TCP   [::1]:5070 ;rport"), "[::1]:5070");
        assert_eq!(sent_by("SIP/2.0/UDP host"), "host");
    }
}
