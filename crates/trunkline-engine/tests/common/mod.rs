//! The PBX under test and the phones that call through it, for the tests
//! in this directory: SIP user agents on Trunkline's own transaction layer.

#![allow(clippy::unwrap_used)]
// a test that cannot unwrap has failed
// Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::time::timeout;
use trunkline_cdr::{CdrQuery, CdrStore, SqliteCdrStore};
use trunkline_engine::{CallEvent, Engine, EngineConfig, MediaProxy};
use trunkline_media::relay::{Relay, RelayConfig};
use trunkline_media::sdp::Sdp;
use trunkline_registrar::{MemoryLocator, Registrar, RegistrarConfig, StaticUsers, authorization};
use trunkline_sip::{HeaderName, Message, Method, StatusCode};
use trunkline_transaction::transport::{Listener, TransportConfig};
use trunkline_transaction::{
    ClientEvent, ClientTransaction, DialogId, Endpoint, EndpointConfig, EndpointEvent, Peer,
    ServerTxId, Timers, Transport, new_tag,
};

pub(crate) const DOMAIN: &str = "pbx.test";
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

pub(crate) type TestEngine = Engine<MemoryLocator, StaticUsers>;

pub(crate) struct Pbx {
    pub(crate) engine: TestEngine,
    pub(crate) endpoint: Endpoint,
    pub(crate) registrar: Arc<Registrar<MemoryLocator, StaticUsers>>,
    pub(crate) net: Net,
    pub(crate) addr: SocketAddr,
    pub(crate) cdr: Arc<SqliteCdrStore>,
    pub(crate) _dir: tempfile::TempDir,
}

/// How the PBX and the phones talk: the transport and the timers.
#[derive(Clone, Copy)]
pub(crate) struct Net {
    pub(crate) transport: Transport,
    pub(crate) timers: Timers,
}

impl Default for Net {
    fn default() -> Self {
        Net {
            transport: Transport::Udp,
            timers: Timers::default(),
        }
    }
}

pub(crate) async fn endpoint(net: Net) -> (Endpoint, mpsc::Receiver<EndpointEvent>) {
    let transport = TransportConfig::new(vec![Listener::new(
        net.transport,
        "127.0.0.1:0".parse().unwrap(),
    )]);
    let mut config = EndpointConfig::new(transport);
    config.timers = net.timers;
    Endpoint::bind(config).await.unwrap()
}

/// A PBX whose relay takes 100 ports from `ports`: below the system's
/// ephemeral range (32768 and up), so a port `free_port` handed out
/// elsewhere cannot be taken meanwhile, and apart from every other test's
/// range (the binary's tests use 20000–29999, trunkline-media's 31000–32099;
/// this crate's 30000–30999 and 32200–32299).
pub(crate) async fn pbx(config: impl FnOnce(&mut EngineConfig), ports: u16) -> Pbx {
    pbx_on(Net::default(), RegistrarConfig::new(DOMAIN), config, ports).await
}

/// A PBX on `net`, with `registrar` settings.
pub(crate) async fn pbx_on(
    net: Net,
    registrar: RegistrarConfig,
    config: impl FnOnce(&mut EngineConfig),
    ports: u16,
) -> Pbx {
    let (endpoint, events) = endpoint(net).await;
    let addr = endpoint.local_addr(net.transport).unwrap();
    let users = StaticUsers::new()
        .with_password("1001", "secret1")
        .with_password("1002", "secret2")
        .with_password("1003", "secret3");
    let registrar = Arc::new(Registrar::new(
        registrar,
        [7; 32],
        MemoryLocator::default(),
        users,
    ));
    let (relay, _relay_events) = Relay::start(RelayConfig {
        ports: (ports, ports + 99),
        workers: 1,
        ..RelayConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cdr = Arc::new(SqliteCdrStore::open(dir.path().join("cdr.sqlite")).unwrap());
    let mut engine_config = EngineConfig::new(DOMAIN);
    engine_config.media_proxy = MediaProxy::Always;
    config(&mut engine_config);
    let store: Arc<dyn CdrStore> = cdr.clone();
    let engine = Engine::new(
        engine_config,
        endpoint.clone(),
        registrar.clone(),
        Some(relay),
        Some(store),
    )
    .unwrap();
    let runner = engine.clone();
    tokio::spawn(async move { runner.run(events).await });
    Pbx {
        engine,
        endpoint,
        registrar,
        net,
        addr,
        cdr,
        _dir: dir,
    }
}

/// A phone: an endpoint, its extension and password, an RTP socket.
pub(crate) struct Phone {
    pub(crate) endpoint: Endpoint,
    pub(crate) net: Net,
    pub(crate) events: mpsc::Receiver<EndpointEvent>,
    pub(crate) user: &'static str,
    pub(crate) password: &'static str,
    pub(crate) pbx: SocketAddr,
    pub(crate) rtp: UdpSocket,
}

impl Phone {
    pub(crate) async fn new(user: &'static str, password: &'static str, pbx: SocketAddr) -> Phone {
        Phone::on(Net::default(), user, password, pbx).await
    }

    /// A phone on `net`.
    pub(crate) async fn on(
        net: Net,
        user: &'static str,
        password: &'static str,
        pbx: SocketAddr,
    ) -> Phone {
        let (endpoint, events) = endpoint(net).await;
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        rtp.set_read_timeout(Some(LIMIT)).unwrap();
        Phone {
            endpoint,
            net,
            events,
            user,
            password,
            pbx,
            rtp,
        }
    }

    pub(crate) fn local(&self) -> SocketAddr {
        self.endpoint.local_addr(self.net.transport).unwrap()
    }

    pub(crate) fn sdp(&self, direction: &str) -> String {
        let port = self.rtp.local_addr().unwrap().port();
        format!(
            "v=0\r\no={} 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n",
            self.user
        )
    }

    pub(crate) fn request(
        &self,
        method: Method,
        uri: &str,
        to: &str,
        call_id: &str,
        seq: u32,
    ) -> trunkline_sip::MessageBuilder {
        let local = self.local();
        Message::request(method.clone(), uri.to_owned())
            .header(
                HeaderName::Via,
                self.endpoint.via(self.net.transport).unwrap(),
            )
            .header(HeaderName::MaxForwards, "70")
            .header(
                HeaderName::From,
                format!("<sip:{}@{DOMAIN}>;tag={}", self.user, new_tag()),
            )
            .header(HeaderName::To, format!("<{to}>"))
            .header(HeaderName::CallId, call_id.to_owned())
            .header(HeaderName::CSeq, format!("{seq} {method}"))
            .header(HeaderName::Contact, format!("<sip:{}@{local}>", self.user))
    }

    /// Sends `build(seq)`, answering one digest challenge; returns the
    /// transaction of the request that was not challenged.
    pub(crate) async fn authenticated(
        &self,
        method: Method,
        uri: &str,
        build: impl Fn(u32, Option<(HeaderName, String)>) -> Message,
    ) -> trunkline_transaction::ClientTransaction {
        let peer = Peer::new(self.net.transport, self.pbx);
        let mut tx = self.endpoint.send_request(build(1, None), peer).unwrap();
        let ClientEvent::Response { response, .. } =
            timeout(LIMIT, tx.final_response()).await.unwrap()
        else {
            panic!("no answer to the first {method}");
        };
        let (challenge, header) = match response.status() {
            Some(StatusCode::UNAUTHORIZED) => (
                response.www_authenticates().next().unwrap(),
                HeaderName::Authorization,
            ),
            Some(StatusCode::PROXY_AUTHENTICATION_REQUIRED) => (
                response.proxy_authenticates().next().unwrap(),
                HeaderName::ProxyAuthorization,
            ),
            other => panic!("expected a challenge, got {other:?}"),
        };
        let value = authorization(
            &challenge,
            method.as_str(),
            uri,
            self.user,
            self.password,
            "cnonce1",
            1,
        )
        .unwrap();
        self.endpoint
            .send_request(build(2, Some((header, value))), peer)
            .unwrap()
    }

    pub(crate) async fn register(&self) {
        let uri = format!("sip:{DOMAIN}");
        let aor = format!("sip:{}@{DOMAIN}", self.user);
        let call_id = new_tag();
        let mut tx = self
            .authenticated(Method::Register, &uri, |seq, auth| {
                let mut b = self
                    .request(Method::Register, &uri, &aor, &call_id, seq)
                    .header(HeaderName::Expires, "300");
                if let Some((name, value)) = auth {
                    b = b.header(name, value);
                }
                b.build().unwrap()
            })
            .await;
        let ClientEvent::Response { response, .. } =
            timeout(LIMIT, tx.final_response()).await.unwrap()
        else {
            panic!("REGISTER timed out");
        };
        assert_eq!(response.status(), Some(StatusCode::OK), "{response:?}");
    }

    /// Calls `callee`; returns the INVITE transaction (after the digest
    /// round) and the Call-ID.
    pub(crate) async fn call(
        &self,
        callee: &str,
        sdp: String,
    ) -> (trunkline_transaction::ClientTransaction, String) {
        self.call_with(&format!("sip:{callee}@{DOMAIN}"), sdp, &[])
            .await
    }

    /// Calls the Request-URI `uri` with `headers` added.
    pub(crate) async fn call_with(
        &self,
        uri: &str,
        sdp: String,
        headers: &[(HeaderName, &str)],
    ) -> (trunkline_transaction::ClientTransaction, String) {
        let call_id = new_tag();
        let tx = self
            .authenticated(Method::Invite, uri, |seq, auth| {
                let mut b = self.request(Method::Invite, uri, uri, &call_id, seq);
                for (name, value) in headers {
                    b = b.header(*name, *value);
                }
                if let Some((name, value)) = auth {
                    b = b.header(name, value);
                }
                b.body("application/sdp", sdp.clone()).build().unwrap()
            })
            .await;
        (tx, call_id)
    }

    /// The next INVITE the phone receives.
    pub(crate) async fn incoming(&mut self) -> (ServerTxId, Message) {
        loop {
            let event = timeout(LIMIT, self.events.recv()).await.unwrap().unwrap();
            if let EndpointEvent::Request {
                tx: Some(tx),
                request,
                ..
            } = event
                && request.method() == Some(&Method::Invite)
            {
                return (tx, request);
            }
        }
    }

    /// Answers the next (re-)INVITE the phone gets 200 with its SDP in
    /// `direction`; the INVITE's SDP.
    pub(crate) async fn answer_reinvite(&mut self, direction: &str) -> String {
        let (tx, request) = self.incoming().await;
        let answer = request
            .response_to(StatusCode::OK)
            .body("application/sdp", self.sdp(direction))
            .build()
            .unwrap();
        self.endpoint.respond(tx, &answer).unwrap();
        String::from_utf8(request.body().to_vec()).unwrap()
    }

    /// Answers an INVITE; returns the dialog the answer created.
    pub(crate) fn answer(
        &self,
        tx: ServerTxId,
        invite: &Message,
        status: StatusCode,
        sdp: Option<String>,
    ) -> DialogId {
        let tag = new_tag();
        let mut b = invite.response_to(status).to_tag(&tag).header(
            HeaderName::Contact,
            format!("<sip:{}@{}>", self.user, self.local()),
        );
        if let Some(sdp) = sdp {
            b = b.body("application/sdp", sdp);
        }
        self.endpoint.respond(tx, &b.build().unwrap()).unwrap();
        DialogId {
            call_id: invite.share(invite.call_id().unwrap()),
            local_tag: tag.into(),
            remote_tag: invite.share(invite.from_tag().unwrap()),
        }
    }

    /// Waits for the final response to `invite` (a call or a re-INVITE),
    /// which must be a 200, and ACKs it; the 200 and its dialog.
    pub(crate) async fn answered(&self, invite: &mut ClientTransaction) -> (Message, DialogId) {
        let (ok, dialog) = final_of(invite).await;
        assert_eq!(ok.status(), Some(StatusCode::OK), "{ok:?}");
        let dialog = dialog.unwrap();
        let seq = ok.cseq().unwrap().seq;
        self.endpoint
            .ack_in_dialog(invite.id(), &dialog, seq)
            .unwrap();
        (ok, dialog)
    }

    /// Sends a BYE in `dialog`.
    pub(crate) fn hang_up(&self, dialog: &DialogId) -> ClientTransaction {
        let bye = self
            .endpoint
            .request_in_dialog(dialog, Method::Bye)
            .unwrap()
            .build()
            .unwrap();
        self.endpoint.send_in_dialog(dialog, bye).unwrap()
    }

    /// Waits for a request in a dialog, answers it 200.
    pub(crate) async fn answer_in_dialog(&mut self, method: Method) -> Message {
        loop {
            let event = timeout(LIMIT, self.events.recv()).await.unwrap().unwrap();
            if let EndpointEvent::Request { tx, request, .. } = event
                && request.method() == Some(&method)
            {
                if let Some(tx) = tx {
                    self.endpoint
                        .respond(tx, &request.response_to(StatusCode::OK).build().unwrap())
                        .unwrap();
                }
                return request;
            }
        }
    }
}

/// An RTP packet with a 160-byte payload.
pub(crate) fn rtp(sequence: u16) -> Vec<u8> {
    let mut packet = vec![0x80, 0, (sequence >> 8) as u8, sequence as u8];
    packet.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
    packet.extend_from_slice(&[0xd5; 160]);
    packet
}

/// Sends RTP from `from` to `to` until `at` receives some (bounded).
pub(crate) fn media_reaches(from: &Phone, to: std::net::SocketAddr, at: &Phone) {
    let mut buf = [0; 2048];
    at.rtp
        .set_read_timeout(Some(std::time::Duration::from_millis(50)))
        .unwrap();
    for sequence in 0..100 {
        from.rtp.send_to(&rtp(sequence), to).unwrap();
        if at.rtp.recv_from(&mut buf).is_ok() {
            return;
        }
    }
    panic!("no media reached {}", at.user);
}

/// What an answered call left the test: its id, the caller's 200 and
/// dialog, the callee's INVITE and dialog.
pub(crate) struct Answered {
    pub(crate) call_id: String,
    pub(crate) ok: Message,
    pub(crate) dialog: DialogId,
    pub(crate) offer: Message,
    pub(crate) callee_dialog: DialogId,
}

/// `caller` calls `callee`'s number, `headers` added to its INVITE, and
/// `callee` answers.
pub(crate) async fn answered_call(
    caller: &Phone,
    callee: &mut Phone,
    headers: &[(HeaderName, &str)],
) -> Answered {
    let uri = format!("sip:{}@{DOMAIN}", callee.user);
    let (mut invite, call_id) = caller
        .call_with(&uri, caller.sdp("sendrecv"), headers)
        .await;
    let (tx, offer) = callee.incoming().await;
    let answer = Some(callee.sdp("sendrecv"));
    let callee_dialog = callee.answer(tx, &offer, StatusCode::OK, answer);
    let (ok, dialog) = caller.answered(&mut invite).await;
    Answered {
        call_id,
        ok,
        dialog,
        offer,
        callee_dialog,
    }
}

/// A PBX (its relay on `ports`), its events, and phones 1001, 1002 and
/// 1003, the last two registered.
pub(crate) async fn three_phones(ports: u16) -> (Pbx, broadcast::Receiver<CallEvent>, [Phone; 3]) {
    let pbx = pbx(|_| {}, ports).await;
    let events = pbx.engine.subscribe();
    let alice = Phone::new("1001", "secret1", pbx.addr).await;
    let bob = Phone::new("1002", "secret2", pbx.addr).await;
    let carol = Phone::new("1003", "secret3", pbx.addr).await;
    bob.register().await;
    carol.register().await;
    (pbx, events, [alice, bob, carol])
}

/// `caller` hangs up `dialog`, and `callee` gets the BYE.
pub(crate) async fn hang_up_with(caller: &Phone, dialog: &DialogId, callee: &mut Phone) {
    let mut bye = caller.hang_up(dialog);
    callee.answer_in_dialog(Method::Bye).await;
    assert_eq!(final_of(&mut bye).await.0.status(), Some(StatusCode::OK));
}

pub(crate) fn media_of(message: &Message) -> SocketAddr {
    let sdp = Sdp::parse(std::str::from_utf8(message.body()).unwrap()).unwrap();
    let index = sdp.media.iter().position(|m| m.media == "audio").unwrap();
    SocketAddr::new(sdp.connection(index).unwrap(), sdp.media[index].port)
}

pub(crate) async fn final_of(
    tx: &mut trunkline_transaction::ClientTransaction,
) -> (Message, Option<DialogId>) {
    match timeout(LIMIT, tx.final_response()).await.unwrap() {
        ClientEvent::Response { response, dialog } => (response, dialog),
        ClientEvent::Timeout => panic!("no final response"),
    }
}

pub(crate) async fn next_ended(
    events: &mut broadcast::Receiver<CallEvent>,
) -> (String, Option<u16>) {
    loop {
        match timeout(LIMIT, events.recv()).await.unwrap().unwrap() {
            CallEvent::Ended {
                disposition,
                sip_status,
                ..
            } => return (disposition, sip_status),
            _ => continue,
        }
    }
}

/// Waits (bounded) until the engine tracks no call and no dialog.
pub(crate) async fn idle(engine: &TestEngine) {
    for _ in 0..100 {
        let stats = engine.stats();
        if stats.active_calls == 0 && stats.dialogs == 0 && engine.active_calls().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "calls left behind: {:?}, listed {:?}",
        engine.stats(),
        engine.active_calls()
    );
}

pub(crate) fn stored(pbx: &Pbx) -> Vec<trunkline_cdr::Cdr> {
    pbx.cdr.query(&CdrQuery::default()).unwrap().records
}
