//! Property tests: generated messages, written with the liberties the
//! grammar allows (compact names, odd case, extra whitespace, folding),
//! parse; what the serializer writes parses back to the same message; and
//! no mutation of a message makes the parser or an accessor panic.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use proptest::prelude::*;
use proptest::string::string_regex;
use trunkline_sip::{Decoder, Frame, HeaderName, Message};

fn re(pattern: &str) -> BoxedStrategy<String> {
    string_regex(pattern).unwrap().boxed()
}

fn token() -> BoxedStrategy<String> {
    re("[A-Za-z0-9.!%*_+`'~-]{1,12}")
}

/// Optional whitespace, sometimes a folded line.
fn lws() -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just(String::new()),
        2 => Just(" ".to_owned()),
        1 => Just("  \t".to_owned()),
        1 => Just("\r\n ".to_owned()),
    ]
    .boxed()
}

fn host() -> BoxedStrategy<String> {
    prop_oneof![
        re("[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9-]{0,8}){0,3}"),
        any::<[u8; 4]>().prop_map(|a| std::net::Ipv4Addr::from(a).to_string()),
        any::<[u16; 8]>().prop_map(|a| format!("[{}]", std::net::Ipv6Addr::from(a))),
    ]
    .boxed()
}

fn sip_uri() -> BoxedStrategy<String> {
    (
        prop_oneof![Just("sip"), Just("sips"), Just("SIP")],
        proptest::option::of(re("([a-zA-Z0-9_.!~*'()&=+$,;?/-]|%[0-9A-F]{2}){1,10}")),
        host(),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(
            (
                re("[a-z0-9-]{1,6}"),
                proptest::option::of(re("[a-zA-Z0-9:/\\[\\]&+$-]{1,6}")),
            ),
            0..3,
        ),
    )
        .prop_map(|(scheme, user, host, port, params)| {
            let mut s = format!("{scheme}:");
            if let Some(u) = user {
                s += &u;
                s += "@";
            }
            s += &host;
            if let Some(p) = port {
                s += &format!(":{p}");
            }
            for (n, v) in params {
                s += &format!(";{n}");
                if let Some(v) = v {
                    s += &format!("={v}");
                }
            }
            s
        })
        .boxed()
}

fn uri() -> BoxedStrategy<String> {
    prop_oneof![
        6 => sip_uri(),
        1 => re("tel:\\+[0-9]{1,4}(-[0-9]{1,4}){0,3}"),
        1 => re("(urn|http):[a-z0-9./:-]{1,12}"),
    ]
    .boxed()
}

fn quoted() -> BoxedStrategy<String> {
    re("([a-zA-Z0-9 ,;:<>@]|\\\\\"|\\\\\\\\){0,12}")
        .prop_map(|s| format!("\"{s}\""))
        .boxed()
}

fn params(extra: &'static str) -> BoxedStrategy<String> {
    // Names start with `x` so they never hit a parameter with rules of its
    // own (q, expires, ttl, rport…).
    proptest::collection::vec(
        (
            lws(),
            re("x[A-Za-z0-9.!%*_+`'~-]{0,8}"),
            lws(),
            proptest::option::of(prop_oneof![token(), quoted()]),
        ),
        0..3,
    )
    .prop_map(move |ps| {
        let mut s = extra.to_owned();
        for (w, n, w2, v) in ps {
            s += &format!("{w};{w2}{n}");
            if let Some(v) = v {
                s += &format!("={v}");
            }
        }
        s
    })
    .boxed()
}

fn name_addr() -> BoxedStrategy<String> {
    (
        prop_oneof![
            Just(String::new()),
            quoted(),
            re("[A-Za-z]{1,8}( [A-Za-z]{1,8}){0,2}")
        ],
        sip_uri(),
        params(""),
    )
        .prop_map(|(d, u, p)| {
            let sep = if d.is_empty() { "" } else { " " };
            format!("{d}{sep}<{u}>{p}")
        })
        .boxed()
}

fn via() -> BoxedStrategy<String> {
    (
        prop_oneof![Just("UDP"), Just("TCP"), Just("TLS"), Just("WSS")],
        lws(),
        host(),
        proptest::option::of(any::<u16>()),
        token(),
        params(""),
    )
        .prop_map(|(t, w, h, port, branch, p)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("SIP/2.0/{t}{w} {h}{port};branch=z9hG4bK{branch}{p}")
        })
        .boxed()
}

fn list(item: BoxedStrategy<String>) -> BoxedStrategy<String> {
    (proptest::collection::vec(item, 1..4), lws())
        .prop_map(|(items, w)| items.join(&format!("{w},{w}")))
        .boxed()
}

/// A header line's name (maybe compact or oddly cased) and a valid value.
fn header() -> BoxedStrategy<(String, String)> {
    let named = |names: &'static [&'static str], value: BoxedStrategy<String>| {
        (proptest::sample::select(names), value, any::<bool>())
            .prop_map(|(n, v, upper)| {
                (
                    if upper {
                        n.to_uppercase()
                    } else {
                        n.to_owned()
                    },
                    v,
                )
            })
            .boxed()
    };
    prop_oneof![
        named(&["Via", "v"], list(via())),
        named(&["From", "f"], name_addr()),
        named(&["To", "t"], name_addr()),
        named(
            &["Contact", "m"],
            prop_oneof![1 => Just("*".to_owned()), 4 => list(name_addr())].boxed()
        ),
        named(
            &["Route", "Record-Route"],
            list(sip_uri().prop_map(|u| format!("<{u};lr>")).boxed())
        ),
        named(
            &["Call-ID", "i"],
            re("[a-zA-Z0-9.!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]{1,16}(@[a-z0-9.]{1,10})?")
        ),
        named(
            &["CSeq"],
            (any::<u32>(), token())
                .prop_map(|(n, m)| format!("{n} {m}"))
                .boxed()
        ),
        named(
            &["Max-Forwards"],
            any::<u8>().prop_map(|n| n.to_string()).boxed()
        ),
        named(
            &["Expires", "Min-Expires"],
            any::<u32>().prop_map(|n| n.to_string()).boxed()
        ),
        named(&["Allow", "Supported", "k", "Require"], list(token())),
        named(
            &["Content-Type", "c", "Accept"],
            (token(), token(), params(""))
                .prop_map(|(a, b, p)| format!("{a}/{b}{p}"))
                .boxed()
        ),
        named(
            &["Authorization", "WWW-Authenticate", "Proxy-Authorization"],
            proptest::collection::vec((token(), prop_oneof![token(), quoted()]), 1..4)
                .prop_map(|ps| {
                    let ps: Vec<String> = ps.into_iter().map(|(n, v)| format!("{n}={v}")).collect();
                    format!("Digest {}", ps.join(", "))
                })
                .boxed()
        ),
        named(
            &["Event", "o", "Subscription-State"],
            (token(), params(""))
                .prop_map(|(t, p)| format!("{t}{p}"))
                .boxed()
        ),
        named(
            &["Subject", "s", "User-Agent", "X-Custom", "P-Unknown"],
            re("[ -~]{0,20}")
        ),
    ]
    .boxed()
}

fn start_line() -> BoxedStrategy<String> {
    prop_oneof![
        (
            prop_oneof![
                Just("INVITE".to_owned()),
                Just("OPTIONS".to_owned()),
                token()
            ],
            uri()
        )
            .prop_map(|(m, u)| format!("{m} {u} SIP/2.0")),
        (100u16..700, re("[ -~]{0,16}")).prop_map(|(c, r)| format!("SIP/2.0 {c} {r}")),
    ]
    .boxed()
}

/// A message as some peer might write it.
fn message() -> BoxedStrategy<Vec<u8>> {
    (
        start_line(),
        proptest::collection::vec((header(), lws()), 0..12),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(|(start, headers, body, with_length)| {
            let mut out = format!("{start}\r\n");
            for ((name, value), w) in headers {
                // A request's CSeq method must match its method; the
                // generator keeps CSeq only on responses.
                if name.eq_ignore_ascii_case("cseq") && !start.starts_with("SIP/") {
                    continue;
                }
                let w = w.replace("\r\n", "");
                out += &format!("{name}{w}:{w}{value}\r\n");
            }
            if with_length {
                out += &format!("Content-Length: {}\r\n", body.len());
            }
            out += "\r\n";
            let mut bytes = out.into_bytes();
            bytes.extend_from_slice(&body);
            bytes
        })
        .boxed()
}

/// Reads every typed accessor: none may panic, and on a message that
/// validates none may miss its header. (A header that `parse` leaves to its
/// reader may be malformed; its accessor then skips it.)
fn read_everything(m: &Message) {
    let valid = m.validate().is_ok();
    for h in m.headers() {
        let Some(name) = h.known else { continue };
        let present = match name {
            HeaderName::Via => m.vias().count() > 0,
            HeaderName::From => m.from().is_some(),
            HeaderName::To => m.to().is_some(),
            HeaderName::Contact => m.contacts().count() > 0,
            HeaderName::CallId => m.call_id().is_some(),
            HeaderName::CSeq => m.cseq().is_some(),
            HeaderName::MaxForwards => m.max_forwards().is_some(),
            HeaderName::Expires => m.expires().is_some(),
            HeaderName::ContentType => m.content_type().is_some(),
            HeaderName::Authorization => m.authorizations().count() > 0,
            HeaderName::WwwAuthenticate => m.www_authenticates().count() > 0,
            HeaderName::Event => m.event().is_some(),
            HeaderName::Route => m.routes().count() > 0,
            HeaderName::RecordRoute => m.record_routes().count() > 0,
            _ => true,
        };
        assert!(
            present || !valid,
            "{name} is in the message but its accessor found nothing: {m:?}"
        );
    }
    for v in m.vias() {
        let _ = (v.branch(), v.rport(), v.received(), v.host().ip());
    }
    for c in m.contacts() {
        if let Some(a) = c.address() {
            let _ = (
                a.display_name(),
                a.q(),
                a.expires(),
                a.uri().as_sip().map(|s| s.user_decoded()),
            );
        }
    }
    for a in m.authorizations().chain(m.www_authenticates()) {
        let _ = (a.username(), a.nonce_count(), a.params().count());
    }
    let _ = (
        m.uri(),
        m.check(),
        m.allow().count(),
        m.supported().count(),
        m.accept().count(),
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn serialize_then_parse_gives_the_same_message(raw in message()) {
        let m = Message::parse_slice(&raw).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&raw)));
        // Generated messages are well formed throughout.
        m.validate().unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&raw)));
        read_everything(&m);
        let again = Message::parse(m.to_bytes()).unwrap();
        prop_assert_eq!(&again, &m);
        prop_assert_eq!(again.to_bytes(), m.to_bytes());
        prop_assert_eq!(format!("{:?}", again.vias().collect::<Vec<_>>()), format!("{:?}", m.vias().collect::<Vec<_>>()));
        prop_assert_eq!(again.from(), m.from());
        prop_assert_eq!(again.to(), m.to());
        prop_assert_eq!(again.contacts().collect::<Vec<_>>(), m.contacts().collect::<Vec<_>>());
        prop_assert_eq!(again.cseq(), m.cseq());
        // A copy through the builder is the same message too (Content-Length
        // comes last and always).
        let rebuilt = m.to_builder().build().unwrap();
        prop_assert_eq!(rebuilt.body(), m.body());
        prop_assert_eq!(rebuilt.vias().count(), m.vias().count());
    }

    #[test]
    fn a_stream_of_messages_frames_back(raws in proptest::collection::vec(message(), 1..4), cut in 1usize..50) {
        let messages: Vec<Message> = raws.iter().map(|r| Message::parse_slice(r).unwrap()).collect();
        let mut stream = Vec::new();
        for m in &messages {
            // Serialized messages always carry Content-Length.
            stream.extend_from_slice(&m.to_builder().build().unwrap().to_bytes());
        }
        let mut decoder = Decoder::default();
        let mut buf = bytes::BytesMut::new();
        let mut got = Vec::new();
        for chunk in stream.chunks(cut) {
            buf.extend_from_slice(chunk);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                match frame {
                    Frame::Message(m) => got.push(m),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got.len(), messages.len());
        for (g, m) in got.iter().zip(&messages) {
            prop_assert_eq!(g.body(), m.body());
            prop_assert_eq!(g.call_id(), m.call_id());
        }
    }

    #[test]
    fn mutations_never_panic(raw in message(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut raw = raw;
        for (at, byte) in edits {
            if raw.is_empty() { break; }
            let i = at.index(raw.len());
            raw[i] = byte;
        }
        if let Ok(m) = Message::parse_slice(&raw) {
            read_everything(&m);
            let _ = Message::parse(m.to_bytes());
        }
        let mut decoder = Decoder::default();
        let mut buf = bytes::BytesMut::from(&raw[..]);
        while let Ok(Some(_)) = decoder.decode(&mut buf) {}
    }
}
