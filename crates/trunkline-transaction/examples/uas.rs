//! A small UAS on [`Endpoint`]: answers OPTIONS with 200, rings and
//! answers every INVITE, answers BYE, and 487s a cancelled INVITE. The
//! SIPp tests call it; it runs until killed.
//!
//! ```sh
//! cargo run -p trunkline-transaction --example uas -- 127.0.0.1:5080 [--ring-ms 100]
//! ```
//!
//! It listens on UDP and TCP at the address, and prints one line per
//! request it sees.

use std::net::SocketAddr;
use std::time::Duration;
use trunkline_sip::{HeaderName, Message, Method, StatusCode};
use trunkline_transaction::transport::{Listener, TransportConfig};
use trunkline_transaction::{Endpoint, EndpointConfig, EndpointEvent, ServerTxId, Transport};

const SDP: &str = "v=0\r\no=uas 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
                   t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .ok_or("usage: uas ADDR [--ring-ms N]")?
        .parse()?;
    let ring = match (args.next().as_deref(), args.next()) {
        (Some("--ring-ms"), Some(ms)) => Duration::from_millis(ms.parse()?),
        _ => Duration::from_millis(50),
    };
    let transport = TransportConfig::new(vec![
        Listener::new(Transport::Udp, addr),
        Listener::new(Transport::Tcp, addr),
    ]);
    let (endpoint, mut events) = Endpoint::bind(EndpointConfig::new(transport)).await?;
    println!("listening on {addr} (UDP, TCP)");
    while let Some(event) = events.recv().await {
        match event {
            EndpointEvent::Request {
                tx: Some(tx),
                request,
                ..
            } => {
                let method = request.method().map_or("?", Method::as_str).to_owned();
                println!("{method} {}", request.call_id().unwrap_or("-"));
                let endpoint = endpoint.clone();
                tokio::spawn(async move { answer(&endpoint, tx, &request, ring).await });
            }
            EndpointEvent::Request { request, .. } => {
                println!("ACK {}", request.call_id().unwrap_or("-"));
            }
            EndpointEvent::Cancelled(tx) => {
                println!("CANCEL");
                if let Some(invite) = endpoint.request(tx) {
                    reply(
                        &endpoint,
                        tx,
                        &invite,
                        StatusCode::REQUEST_TERMINATED,
                        false,
                    );
                }
            }
            other => println!("{other:?}"),
        }
    }
    Ok(())
}

async fn answer(endpoint: &Endpoint, tx: ServerTxId, request: &Message, ring: Duration) {
    match request.method() {
        Some(Method::Invite) => {
            reply(endpoint, tx, request, StatusCode::RINGING, false);
            tokio::time::sleep(ring).await;
            reply(endpoint, tx, request, StatusCode::OK, true);
        }
        Some(Method::Options | Method::Bye | Method::Info | Method::Update) => {
            reply(endpoint, tx, request, StatusCode::OK, false)
        }
        _ => reply(endpoint, tx, request, StatusCode::METHOD_NOT_ALLOWED, false),
    }
}

/// Answers `request` with `status`, our Contact and, if `sdp`, an answer.
/// A response the transaction no longer takes (a CANCEL won the race) is
/// reported and dropped.
fn reply(endpoint: &Endpoint, tx: ServerTxId, request: &Message, status: StatusCode, sdp: bool) {
    let contact = format!("<sip:uas@{}>", request_listener(endpoint, request));
    let mut builder = request
        .response_to(status)
        .to_tag(&local_tag(request))
        .header(HeaderName::Contact, contact);
    if sdp {
        builder = builder.body("application/sdp", SDP);
    }
    match builder.build() {
        Ok(response) => {
            if let Err(e) = endpoint.respond(tx, &response) {
                eprintln!("respond {status}: {e}");
            }
        }
        Err(e) => eprintln!("build {status}: {e}"),
    }
}

/// Our To tag for the call `request` belongs to: the same for its 180,
/// 200 or 487, different for every call.
fn local_tag(request: &Message) -> String {
    use std::hash::{BuildHasher, RandomState};
    static SEED: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    let seed = SEED.get_or_init(RandomState::new);
    let call = (request.call_id(), request.from_tag());
    format!("{:016x}", seed.hash_one(call))
}

/// Our address on the transport the request came over.
fn request_listener(endpoint: &Endpoint, request: &Message) -> String {
    let transport = request
        .via()
        .and_then(|v| Transport::parse(v.transport()))
        .unwrap_or(Transport::Udp);
    let addr = endpoint.local_addr(transport);
    let param = if transport == Transport::Udp {
        ""
    } else {
        ";transport=tcp"
    };
    addr.map_or_else(String::new, |a| format!("{a}{param}"))
}
