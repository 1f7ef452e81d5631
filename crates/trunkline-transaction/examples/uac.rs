//! A small UAC on [`Endpoint`]: sends OPTIONS, or places calls (INVITE,
//! ACK, a short pause, BYE), one after the other, and says how they went.
//! Exit status 0 if every one succeeded.
//!
//! ```sh
//! cargo run -p trunkline-transaction --example uac -- TARGET [--tcp] [--options] [--count N]
//! ```
//!
//! `TARGET` is the peer's `ip:port`. It binds its own UDP and TCP
//! listeners on an ephemeral loopback port.

use std::net::SocketAddr;
use std::time::Duration;
use trunkline_sip::{HeaderName, Message, Method, StatusCode};
use trunkline_transaction::transport::{Listener, TransportConfig};
use trunkline_transaction::{ClientEvent, Endpoint, EndpointConfig, Peer, Transport, new_tag};

const SDP: &str = "v=0\r\no=uac 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
                   t=0 0\r\nm=audio 6002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

struct Options {
    target: SocketAddr,
    transport: Transport,
    options_only: bool,
    count: usize,
}

fn options() -> Result<Options, String> {
    let usage = "usage: uac TARGET [--tcp] [--options] [--count N]";
    let mut args = std::env::args().skip(1);
    let target = args
        .next()
        .ok_or(usage)?
        .parse()
        .map_err(|e| format!("TARGET: {e}"))?;
    let mut options = Options {
        target,
        transport: Transport::Udp,
        options_only: false,
        count: 1,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tcp" => options.transport = Transport::Tcp,
            "--options" => options.options_only = true,
            "--count" => {
                let n = args.next().ok_or(usage)?;
                options.count = n.parse().map_err(|e| format!("--count: {e}"))?;
            }
            other => return Err(format!("unknown argument {other}; {usage}")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() {
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let local: SocketAddr = ([127, 0, 0, 1], 0).into();
    let transport = TransportConfig::new(vec![
        Listener::new(Transport::Udp, local),
        Listener::new(Transport::Tcp, local),
    ]);
    let endpoint = match Endpoint::bind(EndpointConfig::new(transport)).await {
        Ok((endpoint, _events)) => endpoint,
        Err(e) => {
            eprintln!("bind: {e}");
            std::process::exit(1);
        }
    };
    let mut failed = 0;
    for n in 0..options.count {
        let outcome = if options.options_only {
            ping(&endpoint, &options, n).await
        } else {
            call(&endpoint, &options, n).await
        };
        match outcome {
            Ok(()) => println!("{n}: ok"),
            Err(e) => {
                println!("{n}: failed: {e}");
                failed += 1;
            }
        }
    }
    println!("{} of {} succeeded", options.count - failed, options.count);
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// A request from us to the target, over the chosen transport.
fn request(
    endpoint: &Endpoint,
    options: &Options,
    method: Method,
    n: usize,
) -> Result<Message, String> {
    let via = endpoint
        .via(options.transport)
        .ok_or("no listener for the transport")?;
    let local = endpoint
        .local_addr(options.transport)
        .ok_or("no local address")?;
    let transport = if options.transport == Transport::Tcp {
        ";transport=tcp"
    } else {
        ""
    };
    let target = format!("sip:service@{}{transport}", options.target);
    let mut builder = Message::request(method.clone(), target.clone())
        .header(HeaderName::Via, via)
        .header(HeaderName::MaxForwards, "70")
        .header(
            HeaderName::From,
            format!("<sip:uac@{local}>;tag={}", new_tag()),
        )
        .header(HeaderName::To, format!("<{target}>"))
        .header(HeaderName::CallId, format!("{}-{n}@{local}", new_tag()))
        .header(HeaderName::CSeq, format!("1 {method}"))
        .header(HeaderName::Contact, format!("<sip:uac@{local}{transport}>"));
    if method == Method::Invite {
        builder = builder.body("application/sdp", SDP);
    }
    builder.build().map_err(|e| e.to_string())
}

async fn ping(endpoint: &Endpoint, options: &Options, n: usize) -> Result<(), String> {
    let options_request = request(endpoint, options, Method::Options, n)?;
    let peer = Peer::new(options.transport, options.target);
    let mut tx = endpoint
        .send_request(options_request, peer)
        .map_err(|e| e.to_string())?;
    expect_ok(tx.final_response().await).map(drop)
}

async fn call(endpoint: &Endpoint, options: &Options, n: usize) -> Result<(), String> {
    let invite = request(endpoint, options, Method::Invite, n)?;
    let peer = Peer::new(options.transport, options.target);
    let mut tx = endpoint
        .send_request(invite, peer)
        .map_err(|e| e.to_string())?;
    let dialog = expect_ok(tx.final_response().await)?.ok_or("a 200 without a dialog")?;
    endpoint
        .ack_in_dialog(tx.id(), &dialog, 1)
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let bye = endpoint
        .request_in_dialog(&dialog, Method::Bye)
        .and_then(|b| b.build().map_err(trunkline_transaction::Error::Build))
        .map_err(|e| e.to_string())?;
    let mut bye_tx = endpoint
        .send_in_dialog(&dialog, bye)
        .map_err(|e| e.to_string())?;
    expect_ok(bye_tx.final_response().await)?;
    Ok(())
}

/// The dialog of a 2xx, or what went wrong.
fn expect_ok(event: ClientEvent) -> Result<Option<trunkline_transaction::DialogId>, String> {
    match event {
        ClientEvent::Response { response, dialog } if response.status() == Some(StatusCode::OK) => {
            Ok(dialog)
        }
        ClientEvent::Response { response, .. } => Err(format!(
            "answered {}",
            response.status().map_or(0, StatusCode::as_u16)
        )),
        ClientEvent::Timeout => Err("timed out".into()),
    }
}
