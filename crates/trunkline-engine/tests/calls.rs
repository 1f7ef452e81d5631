//! Calls through the engine over real loopback sockets. The phones are
//! SIP user agents on Trunkline's own transaction layer: they register
//! with digest, call with digest, answer, refuse, cancel, hold and hang
//! up, and send RTP through the relay.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::time::timeout;
use trunkline_cdr::{CdrQuery, CdrStore, Disposition, SqliteCdrStore};
use trunkline_engine::{CallEvent, Engine, EngineConfig, MediaProxy};
use trunkline_media::relay::{Relay, RelayConfig};
use trunkline_media::sdp::Sdp;
use trunkline_registrar::{MemoryLocator, Registrar, RegistrarConfig, StaticUsers, authorization};
use trunkline_sip::{HeaderName, Message, Method, StatusCode};
use trunkline_transaction::transport::{Listener, TransportConfig};
use trunkline_transaction::{
    ClientEvent, DialogId, Endpoint, EndpointConfig, EndpointEvent, Peer, ServerTxId, Transport,
    new_tag,
};

const DOMAIN: &str = "pbx.test";
const LIMIT: Duration = Duration::from_secs(10);

type TestEngine = Engine<MemoryLocator, StaticUsers>;

struct Pbx {
    engine: TestEngine,
    addr: SocketAddr,
    cdr: Arc<SqliteCdrStore>,
    _dir: tempfile::TempDir,
}

async fn endpoint() -> (Endpoint, mpsc::Receiver<EndpointEvent>) {
    let transport = TransportConfig::new(vec![Listener::new(
        Transport::Udp,
        "127.0.0.1:0".parse().unwrap(),
    )]);
    Endpoint::bind(EndpointConfig::new(transport))
        .await
        .unwrap()
}

async fn pbx(config: impl FnOnce(&mut EngineConfig), ports: u16) -> Pbx {
    let (endpoint, events) = endpoint().await;
    let addr = endpoint.local_addr(Transport::Udp).unwrap();
    let users = StaticUsers::new()
        .with_password("1001", "secret1")
        .with_password("1002", "secret2");
    let registrar = Arc::new(Registrar::new(
        RegistrarConfig::new(DOMAIN),
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
    let engine = Engine::new(engine_config, endpoint, registrar, Some(relay), Some(store));
    let runner = engine.clone();
    tokio::spawn(async move { runner.run(events).await });
    Pbx {
        engine,
        addr,
        cdr,
        _dir: dir,
    }
}

/// A phone: an endpoint, its extension and password, an RTP socket.
struct Phone {
    endpoint: Endpoint,
    events: mpsc::Receiver<EndpointEvent>,
    user: &'static str,
    password: &'static str,
    pbx: SocketAddr,
    rtp: UdpSocket,
}

impl Phone {
    async fn new(user: &'static str, password: &'static str, pbx: SocketAddr) -> Phone {
        let (endpoint, events) = endpoint().await;
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        rtp.set_read_timeout(Some(LIMIT)).unwrap();
        Phone {
            endpoint,
            events,
            user,
            password,
            pbx,
            rtp,
        }
    }

    fn local(&self) -> SocketAddr {
        self.endpoint.local_addr(Transport::Udp).unwrap()
    }

    fn sdp(&self, direction: &str) -> String {
        let port = self.rtp.local_addr().unwrap().port();
        format!(
            "v=0\r\no={} 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n",
            self.user
        )
    }

    fn request(
        &self,
        method: Method,
        uri: &str,
        to: &str,
        call_id: &str,
        seq: u32,
    ) -> trunkline_sip::MessageBuilder {
        let local = self.local();
        Message::request(method.clone(), uri.to_owned())
            .header(HeaderName::Via, self.endpoint.via(Transport::Udp).unwrap())
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
    async fn authenticated(
        &self,
        method: Method,
        uri: &str,
        build: impl Fn(u32, Option<(HeaderName, String)>) -> Message,
    ) -> trunkline_transaction::ClientTransaction {
        let peer = Peer::new(Transport::Udp, self.pbx);
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

    async fn register(&self) {
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
    async fn call(
        &self,
        callee: &str,
        sdp: String,
    ) -> (trunkline_transaction::ClientTransaction, String) {
        let uri = format!("sip:{callee}@{DOMAIN}");
        let call_id = new_tag();
        let tx = self
            .authenticated(Method::Invite, &uri, |seq, auth| {
                let mut b = self.request(Method::Invite, &uri, &uri, &call_id, seq);
                if let Some((name, value)) = auth {
                    b = b.header(name, value);
                }
                b.body("application/sdp", sdp.clone()).build().unwrap()
            })
            .await;
        (tx, call_id)
    }

    /// The next INVITE the phone receives.
    async fn incoming(&mut self) -> (ServerTxId, Message) {
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

    /// Answers an INVITE; returns the dialog the answer created.
    fn answer(
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

    /// Waits for a request in a dialog, answers it 200.
    async fn answer_in_dialog(&mut self, method: Method) -> Message {
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

fn media_of(message: &Message) -> SocketAddr {
    let sdp = Sdp::parse(std::str::from_utf8(message.body()).unwrap()).unwrap();
    let index = sdp.media.iter().position(|m| m.media == "audio").unwrap();
    SocketAddr::new(sdp.connection(index).unwrap(), sdp.media[index].port)
}

async fn final_of(
    tx: &mut trunkline_transaction::ClientTransaction,
) -> (Message, Option<DialogId>) {
    match timeout(LIMIT, tx.final_response()).await.unwrap() {
        ClientEvent::Response { response, dialog } => (response, dialog),
        ClientEvent::Timeout => panic!("no final response"),
    }
}

async fn next_ended(events: &mut broadcast::Receiver<CallEvent>) -> (String, Option<u16>) {
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
async fn idle(engine: &TestEngine) {
    for _ in 0..100 {
        let stats = engine.stats();
        if stats.active_calls == 0 && stats.dialogs == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("calls left behind: {:?}", engine.stats());
}

fn stored(pbx: &Pbx) -> Vec<trunkline_cdr::Cdr> {
    pbx.cdr.query(&CdrQuery::default()).unwrap().records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_relays_media_and_leaves_a_record() {
    let pbx = pbx(|_| {}, 33000).await;
    let mut events = pbx.engine.subscribe();
    let alice = Phone::new("1001", "secret1", pbx.addr).await;
    let mut bob = Phone::new("1002", "secret2", pbx.addr).await;
    bob.register().await;

    let (mut invite, _) = alice.call("1002", alice.sdp("sendrecv")).await;
    let (tx, offer) = bob.incoming().await;
    let offered_to_bob = media_of(&offer);
    assert_ne!(
        offered_to_bob,
        alice.rtp.local_addr().unwrap(),
        "anchored, not direct"
    );
    bob.answer(tx, &offer, StatusCode::RINGING, None);
    let b_dialog = bob.answer(tx, &offer, StatusCode::OK, Some(bob.sdp("sendrecv")));
    let (ok, a_dialog) = final_of(&mut invite).await;
    assert_eq!(ok.status(), Some(StatusCode::OK));
    let a_dialog = a_dialog.unwrap();
    alice
        .endpoint
        .ack_in_dialog(invite.id(), &a_dialog, 2)
        .unwrap();
    let offered_to_alice = media_of(&ok);
    assert_ne!(offered_to_alice, bob.rtp.local_addr().unwrap());

    // Media both ways through the relay.
    alice.rtp.send_to(&rtp_packet(1), offered_to_alice).unwrap();
    let mut buf = [0; 1500];
    let (n, _) = bob.rtp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &rtp_packet(1)[..]);
    bob.rtp.send_to(&rtp_packet(2), offered_to_bob).unwrap();
    let (n, _) = alice.rtp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &rtp_packet(2)[..]);

    // The caller hangs up: the callee gets the BYE.
    let bye = alice
        .endpoint
        .request_in_dialog(&a_dialog, Method::Bye)
        .unwrap()
        .build()
        .unwrap();
    let mut bye_tx = alice.endpoint.send_in_dialog(&a_dialog, bye).unwrap();
    bob.answer_in_dialog(Method::Bye).await;
    assert_eq!(final_of(&mut bye_tx).await.0.status(), Some(StatusCode::OK));
    let _ = b_dialog;

    assert_eq!(
        next_ended(&mut events).await,
        ("ANSWERED".to_owned(), Some(200))
    );
    idle(&pbx.engine).await;
    let records = stored(&pbx);
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(
        (record.caller.number.as_str(), record.callee.number.as_str()),
        ("1001", "1002")
    );
    assert!(record.answer_time.is_some() && record.ring_time.is_some());
    let ladder: Vec<&str> = record.sip_flow.iter().map(|e| e.start_line()).collect();
    assert!(
        ladder.iter().any(|l| l.starts_with("INVITE sip:1002@")),
        "{ladder:?}"
    );
    assert!(
        ladder.iter().any(|l| l.starts_with("SIP/2.0 180")),
        "{ladder:?}"
    );
    assert!(ladder.iter().any(|l| l.starts_with("BYE ")), "{ladder:?}");
}

fn rtp_packet(seq: u16) -> Vec<u8> {
    let header = trunkline_media::rtp::RtpHeader {
        payload_type: 0,
        sequence: seq,
        timestamp: u32::from(seq) * 160,
        ssrc: 42,
        ..Default::default()
    };
    let mut buf = vec![0; 200];
    let n = header.write(&[0xff; 160], &mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_unregistered_cancelled_and_unanswered_calls() {
    let pbx = pbx(|c| c.ring_timeout = Duration::from_millis(800), 33100).await;
    let mut events = pbx.engine.subscribe();
    let alice = Phone::new("1001", "secret1", pbx.addr).await;
    let mut bob = Phone::new("1002", "secret2", pbx.addr).await;

    // Not registered: 480, counted as no answer (as a 480 from a phone).
    let (mut invite, _) = alice.call("1002", alice.sdp("sendrecv")).await;
    assert_eq!(
        final_of(&mut invite).await.0.status(),
        Some(StatusCode::TEMPORARILY_UNAVAILABLE)
    );
    assert_eq!(
        next_ended(&mut events).await,
        ("NO ANSWER".to_owned(), Some(480))
    );

    bob.register().await;
    // Busy: the callee's 486 reaches the caller.
    let (mut invite, _) = alice.call("1002", alice.sdp("sendrecv")).await;
    let (tx, offer) = bob.incoming().await;
    bob.answer(tx, &offer, StatusCode::BUSY_HERE, None);
    assert_eq!(
        final_of(&mut invite).await.0.status(),
        Some(StatusCode::BUSY_HERE)
    );
    assert_eq!(
        next_ended(&mut events).await,
        ("BUSY".to_owned(), Some(486))
    );

    // The caller cancels while it rings: 487, and the callee is cancelled.
    let (mut invite, _) = alice.call("1002", alice.sdp("sendrecv")).await;
    let (tx, offer) = bob.incoming().await;
    bob.answer(tx, &offer, StatusCode::RINGING, None);
    let (ringing, _) = timeout(LIMIT, invite.next())
        .await
        .unwrap()
        .map(|e| match e {
            ClientEvent::Response { response, dialog } => (response, dialog),
            ClientEvent::Timeout => panic!("timeout"),
        })
        .unwrap();
    assert_eq!(ringing.status(), Some(StatusCode::RINGING));
    alice.endpoint.cancel(invite.id()).unwrap();
    assert_eq!(
        final_of(&mut invite).await.0.status(),
        Some(StatusCode::REQUEST_TERMINATED)
    );
    assert_eq!(
        next_ended(&mut events).await,
        ("NO ANSWER".to_owned(), Some(487))
    );
    wait_cancelled(&mut bob).await;

    // Nobody answers: the ring timeout ends it.
    let (mut invite, _) = alice.call("1002", alice.sdp("sendrecv")).await;
    let (tx, offer) = bob.incoming().await;
    bob.answer(tx, &offer, StatusCode::RINGING, None);
    let (response, _) = final_of(&mut invite).await;
    assert_eq!(response.status(), Some(StatusCode::TEMPORARILY_UNAVAILABLE));
    assert_eq!(next_ended(&mut events).await.0, "NO ANSWER");
    wait_cancelled(&mut bob).await;

    idle(&pbx.engine).await;
    let dispositions: Vec<Disposition> = stored(&pbx).iter().map(|r| r.disposition).collect();
    assert_eq!(dispositions.len(), 4, "{dispositions:?}");
}

/// The phone's ringing INVITE is cancelled: the endpoint reports it and
/// the phone answers 487, as a phone does.
async fn wait_cancelled(phone: &mut Phone) {
    loop {
        let event = timeout(LIMIT, phone.events.recv()).await.unwrap().unwrap();
        if let EndpointEvent::Cancelled(tx) = event {
            let invite = phone.endpoint.request(tx).unwrap();
            let response = invite
                .response_to(StatusCode::REQUEST_TERMINATED)
                .build()
                .unwrap();
            phone.endpoint.respond(tx, &response).unwrap();
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_passes_across_and_the_callee_can_hang_up() {
    let pbx = pbx(|_| {}, 33200).await;
    let mut events = pbx.engine.subscribe();
    let alice = Phone::new("1001", "secret1", pbx.addr).await;
    let mut bob = Phone::new("1002", "secret2", pbx.addr).await;
    bob.register().await;
    let (mut invite, _) = alice.call("1002", alice.sdp("sendrecv")).await;
    let (tx, offer) = bob.incoming().await;
    let b_dialog = bob.answer(tx, &offer, StatusCode::OK, Some(bob.sdp("sendrecv")));
    let (_, a_dialog) = final_of(&mut invite).await;
    let a_dialog = a_dialog.unwrap();
    alice
        .endpoint
        .ack_in_dialog(invite.id(), &a_dialog, 2)
        .unwrap();

    // The caller holds: a re-INVITE with sendonly reaches the callee.
    let reinvite = alice
        .endpoint
        .request_in_dialog(&a_dialog, Method::Invite)
        .unwrap()
        .body("application/sdp", alice.sdp("sendonly"))
        .build()
        .unwrap();
    let mut hold = alice.endpoint.send_in_dialog(&a_dialog, reinvite).unwrap();
    let held = loop {
        let event = timeout(LIMIT, bob.events.recv()).await.unwrap().unwrap();
        if let EndpointEvent::Request {
            tx: Some(tx),
            request,
            ..
        } = event
            && request.method() == Some(&Method::Invite)
        {
            let answer = request
                .response_to(StatusCode::OK)
                .body("application/sdp", bob.sdp("recvonly"))
                .build()
                .unwrap();
            bob.endpoint.respond(tx, &answer).unwrap();
            break request;
        }
    };
    assert!(
        std::str::from_utf8(held.body())
            .unwrap()
            .contains("a=sendonly")
    );
    let (ok, _) = final_of(&mut hold).await;
    assert_eq!(ok.status(), Some(StatusCode::OK));
    assert!(
        std::str::from_utf8(ok.body())
            .unwrap()
            .contains("a=recvonly")
    );
    let seq = ok.cseq().unwrap().seq;
    alice
        .endpoint
        .ack_in_dialog(hold.id(), &a_dialog, seq)
        .unwrap();
    loop {
        if let CallEvent::Held { held, .. } = timeout(LIMIT, events.recv()).await.unwrap().unwrap()
        {
            assert!(held);
            break;
        }
    }

    // The callee hangs up.
    let bye = bob
        .endpoint
        .request_in_dialog(&b_dialog, Method::Bye)
        .unwrap()
        .build()
        .unwrap();
    let mut bye_tx = bob.endpoint.send_in_dialog(&b_dialog, bye).unwrap();
    let mut alice = alice;
    alice.answer_in_dialog(Method::Bye).await;
    assert_eq!(final_of(&mut bye_tx).await.0.status(), Some(StatusCode::OK));
    assert_eq!(next_ended(&mut events).await.0, "ANSWERED");
    idle(&pbx.engine).await;
    let record = &stored(&pbx)[0];
    assert_eq!(record.hangup.by, trunkline_cdr::Side::Callee);
}
