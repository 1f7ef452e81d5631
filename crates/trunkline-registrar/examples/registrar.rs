//! A standalone registrar on loopback: digest authentication against
//! users given on the command line, bindings in memory, one JSON line per
//! registration event on standard output.
//!
//! ```sh
//! cargo run -p trunkline-registrar --example registrar -- 127.0.0.1:5060 pbx.example.com 1001:secret 1002:secret
//! ```
//!
//! It listens on UDP and TCP at the address, answers REGISTER (and OPTIONS
//! with 200), and runs until killed. Each REGISTER answered prints a line
//! `REGISTER <status> <user>`; `--min-expires=N` lowers the minimum expiry
//! (60 s) for tests that want to see a refresh; `--algorithms=MD5` offers
//! only the listed digest algorithms.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use trunkline_registrar::{Algorithm, MemoryLocator, Registrar, RegistrarConfig, StaticUsers};
use trunkline_sip::{Method, StatusCode};
use trunkline_transaction::transport::{Listener, TransportConfig};
use trunkline_transaction::{Endpoint, EndpointConfig, EndpointEvent, Transport};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage =
        "usage: registrar ADDR REALM [--min-expires=N] [--algorithms=MD5,SHA-256] USER:PASSWORD...";
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let mut config = RegistrarConfig::new(args.next().ok_or(usage)?);
    let mut users = StaticUsers::new();
    for arg in args {
        if let Some(min) = arg.strip_prefix("--min-expires=") {
            config.min_expires = min.parse()?;
            continue;
        }
        if let Some(list) = arg.strip_prefix("--algorithms=") {
            config.digest.algorithms = list
                .split(',')
                .map(|a| Algorithm::from_param(Some(a)).ok_or("--algorithms: MD5, SHA-256"))
                .collect::<Result<_, _>>()?;
            continue;
        }
        let (user, password) = arg.split_once(':').ok_or(usage)?;
        users = users.with_password(user, password);
    }
    let registrar = Arc::new(Registrar::new(
        config,
        rand::random(),
        MemoryLocator::default(),
        users,
    ));
    let transport = TransportConfig::new(vec![
        Listener::new(Transport::Udp, addr),
        Listener::new(Transport::Tcp, addr),
    ]);
    let (endpoint, mut events) = Endpoint::bind(EndpointConfig::new(transport)).await?;
    println!("listening on {addr} (UDP, TCP)");

    let mut registrations = registrar.subscribe();
    tokio::spawn(async move {
        while let Ok(event) = registrations.recv().await {
            match serde_json::to_string(&event) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("event: {e}"),
            }
        }
    });
    let sweeper = registrar.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            sweeper.expire(SystemTime::now()).await;
        }
    });

    while let Some(event) = events.recv().await {
        let EndpointEvent::Request {
            tx: Some(tx),
            request,
            peer,
            ..
        } = event
        else {
            continue;
        };
        let registrar = registrar.clone();
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let response = match request.method() {
                Some(Method::Register) => {
                    let handled = registrar.handle(SystemTime::now(), &request, peer).await;
                    let status = handled.response.status().map_or(0, |s| s.as_u16());
                    let user = request
                        .from()
                        .and_then(|f| f.uri().as_sip()?.user().map(str::to_owned));
                    println!("REGISTER {status} {}", user.unwrap_or_default());
                    handled.response
                }
                Some(Method::Options) => match request.response_to(StatusCode::OK).build() {
                    Ok(ok) => ok,
                    Err(e) => return eprintln!("OPTIONS: {e}"),
                },
                _ => match request
                    .response_to(StatusCode::METHOD_NOT_ALLOWED)
                    .header(trunkline_sip::HeaderName::Allow, "REGISTER, OPTIONS")
                    .build()
                {
                    Ok(refusal) => refusal,
                    Err(e) => return eprintln!("405: {e}"),
                },
            };
            if let Err(e) = endpoint.respond(tx, &response) {
                eprintln!("respond: {e}");
            }
        });
    }
    Ok(())
}
