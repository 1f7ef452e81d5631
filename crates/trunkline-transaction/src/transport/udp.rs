//! UDP: one datagram, one message (RFC 3261 §18.1.2, §18.2.1).

use super::{Counters, Transports, stopped};
use crate::peer::{Peer, Transport};
use bytes::Bytes;
use std::sync::Arc;
use tokio::net::UdpSocket;
use trunkline_sip::{Message, reject_malformed};

/// Receives datagrams until shutdown.
pub(super) async fn receive(transports: Transports, socket: Arc<UdpSocket>) {
    let stop = stopped(transports.stopped());
    tokio::pin!(stop);
    let mut buf = vec![0; transports.inner.config.max_message_size.max(1)];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            () = &mut stop => return,
        };
        let Ok((len, source)) = received else {
            // ICMP errors surface here on some systems; the socket goes on.
            continue;
        };
        // An exact-size copy: the message lives as long as its transaction,
        // and must not pin a 64 KiB receive buffer meanwhile.
        let datagram = Bytes::copy_from_slice(&buf[..len]);
        handle(&transports, &socket, datagram, source);
    }
}

fn handle(
    transports: &Transports,
    socket: &UdpSocket,
    datagram: Bytes,
    source: std::net::SocketAddr,
) {
    // Keep-alives (CRLF, or STUN per RFC 5626 §4.4.2) are not SIP messages.
    if datagram.iter().all(|c| matches!(c, b'\r' | b'\n'))
        || datagram.first().is_some_and(|c| *c < 4)
    {
        return;
    }
    match Message::parse(datagram.clone()) {
        Ok(message) => transports.deliver(message, Peer::new(Transport::Udp, source)),
        Err(error) => {
            Counters::count(&transports.inner.counters.malformed);
            if let Some(response) = reject_malformed(&datagram, &error) {
                // Best effort, like any UDP send.
                let _ = socket.try_send_to(&response, source);
            }
        }
    }
}
