//! `rsip` 0.4 and `rsipstack` 0.7's own `sip` module (a fork of rsip with
//! the same API): `SipMessage::try_from(Bytes)`, then the `HeadersExt`
//! accessors and `typed()` on the untyped headers they return.

/// The adapter, written once for both crates' `sip` API.
macro_rules! rsip_api_peer {
    ($($sip:tt)+) => {
        use super::super::Routing;
        use bytes::Bytes;
        use std::hint::black_box;
        use $($sip)+ as sip;
        use sip::prelude::*;

        /// The message and the typed headers the bench reads.
        struct Typed {
            m: sip::SipMessage,
            via: sip::typed::Via,
            from: sip::typed::From,
            to: sip::typed::To,
            cseq: sip::typed::CSeq,
            contact: sip::typed::Contact,
        }

        fn typed(raw: &Bytes) -> Typed {
            let m = sip::SipMessage::try_from(raw.clone()).expect("parses");
            Typed {
                via: m.via_header().expect("Via").typed().expect("typed Via"),
                from: m.from_header().expect("From").typed().expect("typed From"),
                to: m.to_header().expect("To").typed().expect("typed To"),
                cseq: m.cseq_header().expect("CSeq").typed().expect("typed CSeq"),
                contact: m.contact_header().expect("Contact").typed().expect("typed Contact"),
                m,
            }
        }

        /// Parses and reads the routing headers as owned values.
        pub(crate) fn route(raw: &Bytes) -> Routing {
            let Typed { m, via, from, to, cseq, contact } = typed(raw);
            Routing {
                via_branch: via.branch().expect("branch").to_string(),
                from_tag: from.tag().expect("From tag").to_string(),
                to_tag: to.tag().map(ToString::to_string),
                call_id: m.call_id_header().expect("Call-ID").value().to_string(),
                cseq: cseq.seq,
                cseq_method: cseq.method.to_string(),
                contact_uri: contact.uri.to_string(),
                content_length: content_length(&m),
            }
        }

        /// The same reads without building strings.
        pub(crate) fn route_sum(raw: &Bytes) -> usize {
            let Typed { m, via, from, to, cseq, contact } = typed(raw);
            black_box((&cseq.method, &contact.uri));
            via.branch().map_or(0, |b| b.value().len())
                + from.tag().map_or(0, |t| t.value().len())
                + to.tag().map_or(0, |t| t.value().len())
                + m.call_id_header().expect("Call-ID").value().len()
                + cseq.seq as usize
                + content_length(&m)
        }

        /// There is no Content-Length accessor on the message: find the
        /// header among the parsed ones and read its number (as rsip's own
        /// `ContentLength::length` does; rsipstack lacks that method).
        fn content_length(m: &sip::SipMessage) -> usize {
            m.headers()
                .iter()
                .find_map(|h| match h {
                    sip::Header::ContentLength(l) => Some(l.value().parse().expect("Content-Length")),
                    _ => None,
                })
                .expect("Content-Length")
        }
    };
}

pub(crate) mod rsip {
    rsip_api_peer!(::rsip);
}

pub(crate) mod rsipstack {
    rsip_api_peer!(::rsipstack::sip);
}
