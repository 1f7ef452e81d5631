//! The 49 torture messages of RFC 4475, each with what the RFC says a
//! conforming element sees in it. Files in `tests/data/rfc4475/`.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use bytes::Bytes;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};
use trunkline_sip::{Contact, Error, HeaderName, Host, Message, Method, StatusCode, Uri};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc4475");

fn raw(name: &str) -> Bytes {
    std::fs::read(format!("{DIR}/{name}.dat"))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .into()
}

fn parse(name: &str) -> Message {
    Message::parse(raw(name)).unwrap_or_else(|e| panic!("{name} should parse: {e}"))
}

/// The strict receive path: parse, then check every header.
fn reject(name: &str) -> Error {
    match Message::parse(raw(name)).and_then(|m| m.validate().map(|()| m)) {
        Ok(m) => panic!("{name} should be rejected, parsed as {m:?}"),
        Err(e) => e,
    }
}

fn sip_user(uri: Uri<'_>) -> Vec<u8> {
    uri.as_sip().unwrap().user_decoded().unwrap().into_owned()
}

const VALID: &[&str] = &[
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
];
const INVALID: &[&str] = &[
    "badinv01",
    "clerr",
    "ncl",
    "scalar02",
    "scalarlg",
    "quotbal",
    "ltgtruri",
    "lwsruri",
    "lwsstart",
    "trws",
    "escruri",
    "baddate",
    "regbadct",
    "badaspec",
    "baddn",
    "badvers",
    "mismatch01",
    "mismatch02",
    "bigcode",
];
const TRANSACTION: &[&str] = &["badbranch"];
const APPLICATION: &[&str] = &[
    "insuf", "unkscm", "novelsc", "unksm2", "bext01", "invut", "regaut01", "multi01", "mcl01",
    "bcast", "zeromf", "cparam01", "cparam02", "regescrt", "sdp01",
];
const BACKWARD: &[&str] = &["inv2543"];

#[test]
fn every_message_is_classified_once() {
    let files: BTreeSet<String> = std::fs::read_dir(DIR)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".dat").map(str::to_owned))
        .collect();
    let classified: Vec<&str> = [VALID, INVALID, TRANSACTION, APPLICATION, BACKWARD].concat();
    assert_eq!(classified.len(), 49);
    assert_eq!(files, classified.iter().map(|s| s.to_string()).collect());
}

#[test]
fn valid_messages_parse_and_check() {
    for name in VALID.iter().chain(TRANSACTION).chain(BACKWARD) {
        let m = parse(name);
        m.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        m.check().unwrap_or_else(|e| panic!("{name}: {e}"));
        // What we write out reads back the same.
        assert_eq!(Message::parse(m.to_bytes()).unwrap(), m, "{name}");
    }
}

/// §3.1.1.1 A Short Tortuous INVITE
#[test]
fn wsinv() {
    let m = parse("wsinv");
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(
        m.uri_str(),
        Some("sip:vivekg@chair-dnrc.example.com;unknownparam")
    );
    let to = m.to().unwrap();
    assert_eq!(to.uri().as_str(), "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = m.from().unwrap();
    assert_eq!(from.display_name().unwrap(), r#"J Rosenberg \""#);
    assert_eq!(from.uri().as_str(), "sip:jdrosen@example.com");
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards(), Some(68));
    assert_eq!(m.call_id(), Some("wsinv.ndaksdj@192.0.2.1"));
    assert_eq!(m.content_length(), Some(150));
    assert_eq!(m.body().len(), 150);
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, "INVITE"));
    let vias: Vec<_> = m
        .vias()
        .map(|v| (v.transport(), v.host().to_string(), v.branch()))
        .collect();
    assert_eq!(
        vias,
        [
            ("UDP", "192.0.2.2".to_owned(), Some("390skdjuw")),
            (
                "TCP",
                "spindle.example.com".to_owned(),
                Some("z9hG4bK9ikj8")
            ),
            ("UDP", "192.168.255.111".to_owned(), Some("z9hG4bK30239")),
        ]
    );
    assert_eq!(m.header(HeaderName::Subject), Some(""));
    let newfangled: Vec<_> = m
        .header("NewFangledHeader")
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        newfangled.join(" "),
        "newfangled value continued newfangled value"
    );
    assert_eq!(m.header("unknownheaderwithunusualvalue"), Some(";;,,;;,;"));
    let route = m.routes().next().unwrap();
    let route_uri = route.uri();
    let route_sip = route_uri.as_sip().unwrap();
    assert!(route_sip.is_loose_route());
    assert_eq!(route_sip.param("unknownwith"), Some("value"));
    assert_eq!(route_sip.param("unknown-no-value"), Some(""));
    let contact = m.contact().unwrap();
    assert_eq!(contact.display_name().unwrap(), r#"Quoted string """#);
    assert_eq!(contact.q(), Some(330));
    assert_eq!(contact.param("newparam"), Some("newvalue"));
    assert_eq!(contact.param("secondparam"), Some(""));
}

/// §3.1.1.2 Wide Range of Valid Characters
#[test]
fn intmeth() {
    let m = parse("intmeth");
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(m.method().unwrap().as_str(), method);
    assert!(matches!(m.method(), Some(Method::Extension(_))));
    assert_eq!(m.cseq().unwrap().method, method);
    let uri = m.uri().unwrap();
    let sip = uri.as_sip().unwrap();
    assert_eq!(
        sip.user(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        sip.password(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(m.via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
    assert_eq!(
        m.to().unwrap().display_name().unwrap(),
        "BEL:\x07 NUL:\0 DEL:\x7f"
    );
    let from = m.from().unwrap();
    assert_eq!(
        from.display_name().unwrap(),
        "token1~` token2'+_ token3*%!.-"
    );
    assert_eq!(from.param("fromParam''~+*_!.-%"), Some("работающий"));
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        m.call_id(),
        Some(r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#)
    );
    assert_eq!(m.max_forwards(), Some(255));
    assert_eq!(
        m.header("extensionHeader-!.%*+_`'~"),
        Some("\u{feff}大停電")
    );
}

/// §3.1.1.3 Valid Use of the % Escaping Mechanism
#[test]
fn esc01() {
    let m = parse("esc01");
    assert_eq!(sip_user(m.uri().unwrap()), b"sips:user@example.com");
    assert_eq!(sip_user(m.to().unwrap().uri()), b"user");
    assert_eq!(sip_user(m.from().unwrap().uri()), b"I have spaces");
    let contact = m.contact().unwrap();
    let uri = contact.uri();
    assert_eq!(sip_user(uri), b"caller");
    let params: Vec<_> = uri.as_sip().unwrap().params().iter().collect();
    assert_eq!(
        params,
        [("%6C%72", None), ("n%61me", Some("v%61lue%25%34%31"))]
    );
    assert!(m.content_type().unwrap().is("application", "sdp"));
    assert_eq!(m.call_id(), Some("esc01.239409asdfakjkn23onasd0-3234"));
}

/// §3.1.1.4 Escaped Nulls in URIs
#[test]
fn escnull() {
    let m = parse("escnull");
    assert_eq!(sip_user(m.to().unwrap().uri()), b"null-\0-null");
    let users: Vec<Vec<u8>> = m
        .contacts()
        .map(|c| sip_user(c.address().unwrap().uri()))
        .collect();
    assert_eq!(users, [b"\0".to_vec(), b"\0\0".to_vec()]);
    assert_eq!(m.content_length(), Some(0));
}

/// §3.1.1.5 Use of % When It Is Not an Escape
#[test]
fn esc02() {
    let m = parse("esc02");
    // The method is the token as written, not REGISTER.
    assert_eq!(m.method().unwrap().as_str(), "RE%47IST%45R");
    assert_ne!(m.method(), Some(&Method::Register));
    assert_eq!(m.cseq().unwrap().method, "RE%47IST%45R");
    assert_eq!(m.to().unwrap().display_name().unwrap(), "%Z%45");
    assert_eq!(m.via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
    // `C%6Fntact` is an extension header, not Contact.
    assert_eq!(m.contacts().count(), 2);
    assert_eq!(
        m.header("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );
}

/// §3.1.1.6 Message with No LWS between Display Name and <
#[test]
fn lwsdisp() {
    let from = parse("lwsdisp").from().map(|f| {
        (
            f.display_name().unwrap().into_owned(),
            f.tag().map(str::to_owned),
        )
    });
    assert_eq!(from, Some(("caller".to_owned(), Some("323".to_owned()))));
}

/// §3.1.1.7 Long Values in Header Fields
#[test]
fn longreq() {
    let m = parse("longreq");
    assert_eq!(m.vias().count(), 34);
    assert_eq!(m.via().unwrap().host(), Host::Domain("sip33.example.com"));
    assert_eq!(m.via().unwrap().branch(), None);
    let last = m.vias().last().unwrap();
    assert!(last.branch().unwrap().ends_with("longbranchvalue"));
    assert_eq!(last.received(), Some("192.0.2.5"));
    let to = m.to().unwrap();
    assert!(to.display_name().unwrap().contains("extremeextreme"));
    let to_uri = to.uri();
    let to_sip = to_uri.as_sip().unwrap();
    assert_eq!(to_sip.port(), Some(6000));
    assert_eq!(to_sip.params().iter().count(), 3);
    let from = m.from().unwrap();
    assert_eq!(from.tag().unwrap().len(), 155);
    assert_eq!(from.params().iter().count(), 3);
    assert!(m.call_id().unwrap().ends_with("longcallid"));
    let long_name = "Unknown-LongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLong-Name";
    assert!(m.header(long_name).unwrap().starts_with("unknown-long"));
    assert_eq!(m.content_length(), Some(150));
    assert_eq!(m.body().len(), 150);
}

/// §3.1.1.8 Extra Trailing Octets in a UDP Datagram
#[test]
fn dblreq() {
    let m = parse("dblreq");
    assert_eq!(m.method(), Some(&Method::Register));
    assert_eq!(m.call_id(), Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412"));
    assert!(
        m.body().is_empty(),
        "the INVITE after the REGISTER is discarded"
    );
}

/// §3.1.1.9 Semicolon-Separated Parameters in URI User Part
#[test]
fn semiuri() {
    let m = parse("semiuri");
    let uri = m.uri().unwrap();
    let sip = uri.as_sip().unwrap();
    assert_eq!(sip.user(), Some("user;par=u%40example.net"));
    assert_eq!(sip.host(), Host::Domain("example.com"));
    assert!(sip.params().is_empty());
    let accept: Vec<_> = m
        .accept()
        .map(|a| format!("{}/{}", a.mtype(), a.subtype()))
        .collect();
    assert_eq!(
        accept,
        [
            "application/sdp",
            "application/pkcs7-mime",
            "multipart/mixed",
            "multipart/signed",
            "message/sip",
            "message/sipfrag"
        ]
    );
}

/// §3.1.1.10 Varied and Unknown Transport Types
#[test]
fn transports() {
    let m = parse("transports");
    let transports: Vec<_> = m.vias().map(|v| v.transport()).collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    assert_eq!(m.call_id(), Some("transports.kijh4akdnaqjkwendsasfdj"));
}

/// §3.1.1.11 Multipart MIME Message
#[test]
fn mpart01() {
    let m = parse("mpart01");
    let ct = m.content_type().unwrap();
    assert!(ct.is("multipart", "mixed"));
    assert_eq!(ct.params().get("boundary"), Some("7a9cbec02ceef655"));
    assert_eq!(m.body().len(), 553);
    assert!(m.body().ends_with(b"--7a9cbec02ceef655--\r\n"));
    assert_eq!(
        m.date(),
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_129_351_496))
    );
    assert_eq!(m.user_agent(), Some("SIPimp.org/0.2.5 (curses)"));
    assert!(
        m.header(HeaderName::Identity)
            .unwrap()
            .starts_with("r5mwreLuyDRYBi")
    );
}

/// §3.1.1.12 Unusual Reason Phrase
#[test]
fn unreason() {
    let m = parse("unreason");
    assert_eq!(m.status(), Some(StatusCode::OK));
    assert_eq!(
        m.reason(),
        Some("= 2**3 * 5**2 но сто девяносто девять - простое")
    );
}

/// §3.1.1.13 Empty Reason Phrase
#[test]
fn noreason() {
    let m = parse("noreason");
    assert_eq!(m.status(), Some(StatusCode::TRYING));
    assert_eq!(m.reason(), Some(""));
}

#[test]
fn invalid_messages_are_rejected_naming_the_fault() {
    use HeaderName as H;
    let header = |name: &str, header: H, what: &str, at: &str| {
        let raw = raw(name);
        let e = reject(name);
        match &e {
            Error::Header {
                name: h,
                offset,
                what: w,
            } => {
                assert_eq!(*h, header, "{name}: {e}");
                assert!(w.contains(what), "{name}: {e}");
                assert!(
                    raw[*offset..].starts_with(at.as_bytes()),
                    "{name}: {e} at {:?}",
                    &raw[*offset..*offset + 10]
                );
            }
            _ => panic!("{name}: expected a {header} error, got {e}"),
        }
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.reason_phrase(), format!("Bad {header} Header"));
        // The headers that identify the transaction fail the parse itself;
        // the others only validate(), and their accessors skip the value.
        let parsed = Message::parse(raw.clone());
        match header {
            H::Date => assert_eq!(parsed.unwrap().date(), None, "{name}"),
            H::Contact => assert_eq!(parsed.unwrap().contacts().count(), 0, "{name}"),
            _ => assert_eq!(parsed, Err(e), "{name}"),
        }
    };
    // §3.1.2.1 Extraneous Header Field Separators
    header("badinv01", H::Via, "empty parameter", ";,;,,");
    // §3.1.2.3 Negative Content-Length
    header("ncl", H::ContentLength, "non-negative", "-999");
    // §3.1.2.4 Request Scalar Fields with Overlarge Values
    header("scalar02", H::CSeq, "out of range", "36893488147419103232");
    // §3.1.2.5 Response Scalar Fields with Overlarge Values
    header(
        "scalarlg",
        H::CSeq,
        "out of range",
        "9292394834772304023312",
    );
    // §3.1.2.6 Unterminated Quoted String in Display Name
    header(
        "quotbal",
        H::To,
        "unterminated quoted string",
        "\"Mr. J. User",
    );
    // §3.1.2.12 Invalid Time Zone in Date Header Field
    header(
        "baddate",
        H::Date,
        "expected a date",
        "Fri, 01 Jan 2010 16:00:00 EST",
    );
    // §3.1.2.13 Failure to Enclose name-addr URI in <>
    header("regbadct", H::Contact, "enclosed in '<' '>'", "?Route=");
    // §3.1.2.14 Spaces within addr-spec
    header("badaspec", H::To, "whitespace inside", " sip:t.watson");
    // §3.1.2.15 Non-token Characters in Display Name
    header("baddn", H::From, "display name", ", Alexander");

    let start_line = |name: &str, what: &str| {
        let e = reject(name);
        assert!(matches!(e, Error::StartLine { .. }), "{name}: {e}");
        assert!(e.to_string().contains(what), "{name}: {e}");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    };
    // §3.1.2.9 Multiple SP Separating Request-Line Elements
    start_line("lwsstart", "extra whitespace");
    // §3.1.2.10 SP Characters at End of Request-Line
    start_line("trws", "trailing whitespace");
    // §3.1.2.19 Overlarge Response Code
    start_line("bigcode", "three digits");

    let request_uri = |name: &str, what: &str| {
        let e = reject(name);
        assert!(matches!(e, Error::RequestUri { .. }), "{name}: {e}");
        assert!(e.to_string().contains(what), "{name}: {e}");
        assert_eq!(e.reason_phrase(), "Bad Request-URI");
    };
    // §3.1.2.7 <> Enclosing Request-URI
    request_uri("ltgtruri", "scheme");
    // §3.1.2.8 Malformed SIP Request-URI (embedded LWS)
    request_uri("lwsruri", "whitespace in the Request-URI");
    // §3.1.2.11 Escaped Headers in SIP Request-URI
    request_uri("escruri", "URI headers are not allowed");

    // §3.1.2.2 Content Length Larger Than Message
    assert_eq!(
        reject("clerr"),
        Error::BodyTruncated {
            expected: 9999,
            got: 154
        }
    );
    // §3.1.2.16 Unknown Protocol Version
    let e = reject("badvers");
    assert_eq!(e, Error::Version { offset: 33 });
    assert_eq!(e.status(), StatusCode::VERSION_NOT_SUPPORTED);
    // §3.1.2.17 Start Line and CSeq Method Mismatch, §3.1.2.18 with an unknown method
    for name in ["mismatch01", "mismatch02"] {
        let e = reject(name);
        let Error::CSeqMethodMismatch { offset } = e else {
            panic!("{name}: {e}");
        };
        assert!(raw(name)[offset..].starts_with(b"INVITE"));
        assert_eq!(e.reason_phrase(), "CSeq Method Mismatch");
    }
}

/// §3.2.1 Missing Transaction Identifier
#[test]
fn badbranch() {
    let m = parse("badbranch");
    let via = m.via().unwrap();
    assert_eq!(via.branch(), Some("z9hG4bK"));
    assert!(
        !via.has_rfc3261_branch(),
        "the bare magic cookie is no RFC 3261 branch"
    );
}

#[test]
fn application_level_semantics_are_detectable() {
    // §3.3.1 Missing Required Header Fields
    let e = parse("insuf").check().unwrap_err();
    assert_eq!(e, Error::MissingHeader(HeaderName::To));
    assert_eq!(
        (e.status(), e.reason_phrase().as_ref()),
        (StatusCode::BAD_REQUEST, "Missing To Header")
    );
    // §3.3.2 Request-URI with Unknown Scheme, §3.3.3 Known but Atypical Scheme
    for (name, scheme) in [
        ("unkscm", "nobodyKnowsThisScheme"),
        ("novelsc", "soap.beep"),
    ] {
        let e = parse(name).check().unwrap_err();
        assert_eq!(e, Error::UnsupportedUriScheme(scheme.into()));
        assert_eq!(e.status(), StatusCode::UNSUPPORTED_URI_SCHEME);
    }
    // §3.3.4 Unknown URI Schemes in Header Fields
    let m = parse("unksm2");
    assert_eq!(m.to().unwrap().uri().scheme(), "isbn");
    assert_eq!(m.from().unwrap().uri().as_str(), "http://www.example.com");
    assert_eq!(m.contact().unwrap().uri().as_str(), "name:John_Smith");
    m.check().unwrap();
    // §3.3.5 Proxy-Require and Require
    let m = parse("bext01");
    assert_eq!(
        m.require().collect::<Vec<_>>(),
        ["nothingSupportsThis", "nothingSupportsThisEither"]
    );
    assert_eq!(m.proxy_require().count(), 2);
    // §3.3.6 Unknown Content-Type
    assert!(
        parse("invut")
            .content_type()
            .unwrap()
            .is("application", "unknownformat")
    );
    // §3.3.7 Unknown Authorization Scheme
    let m = parse("regaut01");
    let auth = m.authorizations().next().unwrap();
    assert_eq!(auth.scheme(), "NoOneKnowsThisScheme");
    assert!(!auth.is_digest());
    // §3.3.8 Multiple Values in Single Value Required Fields
    let m = parse("multi01");
    assert_eq!(m.check(), Err(Error::RepeatedHeader(HeaderName::To)));
    for h in [
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::From,
        HeaderName::To,
        HeaderName::MaxForwards,
    ] {
        assert_eq!(m.header_count(h), 2, "{h}");
    }
    // §3.3.9 Multiple Content-Length Values
    let m = parse("mcl01");
    assert_eq!(
        m.check(),
        Err(Error::RepeatedHeader(HeaderName::ContentLength))
    );
    assert!(
        m.body().starts_with(b"There's no way"),
        "nothing is dropped"
    );
    // §3.3.10 200 OK Response with Broadcast Via Header Field Value
    let m = parse("bcast");
    assert_eq!(
        m.vias().nth(1).unwrap().host(),
        Host::Ipv4(Ipv4Addr::BROADCAST)
    );
    // §3.3.11 Max-Forwards of Zero
    assert_eq!(parse("zeromf").max_forwards(), Some(0));
    // §3.3.12 REGISTER with a Contact Header Parameter
    let m = parse("cparam01");
    let c = m.contact().unwrap();
    assert!(c.uri().as_sip().unwrap().params().is_empty());
    assert_eq!(c.param("unknownparam"), Some(""));
    // §3.3.13 REGISTER with a url Parameter
    let m = parse("cparam02");
    let c = m.contact().unwrap();
    assert_eq!(c.uri().as_sip().unwrap().param("unknownparam"), Some(""));
    assert!(c.params().is_empty());
    // §3.3.14 REGISTER with a URL Escaped Header
    let m = parse("regescrt");
    assert_eq!(
        m.contact().unwrap().uri().as_sip().unwrap().headers(),
        Some("Route=%3Csip:sip.example.com%3E")
    );
    // §3.3.15 Unacceptable Accept Offering
    let m = parse("sdp01");
    let accept: Vec<_> = m.accept().collect();
    assert_eq!(accept.len(), 1);
    assert!(accept[0].is("text", "nobodyKnowsThis"));
    for name in APPLICATION {
        // Every one of them is syntactically fine.
        parse(name);
    }
    assert!(matches!(
        parse("cparam01").contacts().next(),
        Some(Contact::Address(_))
    ));
}

/// §3.4.1 INVITE with RFC 2543 Syntax
#[test]
fn inv2543() {
    let m = parse("inv2543");
    let via = m.via().unwrap();
    assert_eq!(via.branch(), None);
    assert!(!via.has_rfc3261_branch());
    assert_eq!(m.max_forwards(), None);
    assert_eq!(
        m.from().unwrap().uri().as_sip().unwrap().param("user"),
        Some("phone")
    );
    // In addr-spec form the parameter belongs to the header, not the URI.
    let to = m.to().unwrap();
    assert_eq!(to.param("user"), Some("phone"));
    assert!(to.uri().as_sip().unwrap().params().is_empty());
    assert_eq!(
        m.record_routes()
            .next()
            .unwrap()
            .uri()
            .as_sip()
            .unwrap()
            .maddr(),
        Some("ss1.example.com")
    );
    assert!(m.content_type().unwrap().is("application", "sdp"));
}
