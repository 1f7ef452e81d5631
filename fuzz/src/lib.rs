//! The bodies of the fuzz targets, shared by the libFuzzer binaries in
//! `fuzz_targets/` and by the corpus replay that `cargo test` runs.

/// `sip_message`: parse one datagram; if it parses, every typed accessor
/// answers, the serialized form parses to the same message, and a copy
/// through the builder keeps the body. Also feed the bytes to the stream
/// decoder. Any panic is a bug.
pub fn sip_message(data: &[u8]) {
    use trunkline_sip::{Decoder, Message};

    if let Ok(m) = Message::parse(bytes::Bytes::copy_from_slice(data)) {
        touch_everything(&m);
        let again = Message::parse(m.to_bytes())
            .unwrap_or_else(|e| panic!("serialized message does not parse: {e}\n{m:?}"));
        assert_eq!(again, m, "serialize(parse(m)) differs");
        if let Ok(copy) = m.to_builder().build() {
            assert_eq!(copy.body(), m.body());
        }
    }
    let mut decoder = Decoder::default();
    let mut buf = bytes::BytesMut::from(data);
    // Each successful step consumes bytes, so this ends.
    while let Ok(Some(_)) = decoder.decode(&mut buf) {}
}

/// `sdp`: parse text as a session description; what parses must
/// serialize to a description that parses to the same, and the
/// offer/answer edits must not panic on it.
pub fn sdp(data: &[u8]) {
    use trunkline_media::sdp::{Direction, Sdp};

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut sdp) = Sdp::parse(text) else {
        return;
    };
    let again = Sdp::parse(&sdp.to_string())
        .unwrap_or_else(|e| panic!("serialized SDP does not parse: {e}\n{sdp:?}"));
    assert_eq!(again, sdp, "serialize(parse(sdp)) differs");
    for index in 0..sdp.media.len() {
        let _ = (
            sdp.connection(index),
            sdp.direction(index),
            sdp.cryptos(index),
        );
        let codecs = sdp.codecs(index);
        sdp.retain_codecs(index, |c| codecs.first().is_some_and(|f| f.same_as(c)));
        sdp.set_direction(index, Direction::SendOnly);
        sdp.strip_crypto(index);
    }
    sdp.set_connection(std::net::Ipv4Addr::LOCALHOST.into());
    Sdp::parse(&sdp.to_string()).unwrap_or_else(|e| panic!("edited SDP does not parse: {e}"));
}

fn touch_everything(m: &trunkline_sip::Message) {
    let _ = (m.uri(), m.status(), m.reason(), m.check(), m.validate());
    for v in m.vias() {
        let _ = (v.branch(), v.rport(), v.received(), v.ttl(), v.host().ip());
    }
    for a in [m.from(), m.to(), m.refer_to(), m.referred_by()]
        .into_iter()
        .flatten()
    {
        let _ = (
            a.display_name(),
            a.tag(),
            a.uri().as_sip().map(|u| u.user_decoded()),
        );
    }
    for c in m.contacts() {
        if let Some(a) = c.address() {
            let _ = (a.q(), a.expires(), a.params().iter().count());
        }
    }
    for a in m
        .authorizations()
        .chain(m.proxy_authenticates())
        .chain(m.www_authenticates())
    {
        let _ = (
            a.username(),
            a.nonce_count(),
            a.is_stale(),
            a.params().count(),
        );
    }
    let _ = (
        m.call_id(),
        m.cseq(),
        m.max_forwards(),
        m.content_length(),
        m.content_type(),
        m.expires(),
        m.event(),
        m.subscription_state(),
        m.replaces(),
        m.retry_after(),
        m.date(),
        m.session_expires(),
        m.rack(),
        m.routes().count() + m.record_routes().count() + m.allow().count() + m.supported().count(),
        m.reasons().count()
            + m.warnings().count()
            + m.accept().count()
            + m.p_asserted_identities().count(),
    );
}
