//! UDP: one datagram, one message (RFC 3261 §18.1.2, §18.2.1).

use super::{Counters, Shared};
use crate::peer::{Peer, Transport};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use trunkline_sip::{Error, Message, reject_malformed};

/// Receives datagrams until shutdown.
pub(super) async fn receive(shared: Arc<Shared>, socket: Arc<UdpSocket>) {
    let stop = shared.stopped();
    tokio::pin!(stop);
    let limit = shared.config.max_message_size;
    // One byte more than the limit, so a datagram over it shows as longer
    // rather than being cut silently to a size that might parse.
    let mut buf = vec![0; limit.saturating_add(1)];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            () = &mut stop => return,
        };
        let Ok((len, source)) = received else {
            // ICMP errors for earlier sends surface here; the socket goes on.
            continue;
        };
        if len > limit {
            Counters::count(&shared.counters.malformed);
            // What arrived is cut short; answer (513) only if its header
            // section is whole.
            if let Some(response) = reject_malformed(&buf[..len], &Error::TooLarge { limit }) {
                let _ = socket.try_send_to(&response, source);
            }
            continue;
        }
        // An exact-size copy: the message lives as long as its transaction,
        // and must not pin the receive buffer meanwhile.
        let datagram = Bytes::copy_from_slice(&buf[..len]);
        handle(&shared, &socket, datagram, source);
    }
}

fn handle(shared: &Shared, socket: &UdpSocket, datagram: Bytes, source: SocketAddr) {
    // Keep-alives (CRLF, or STUN per RFC 5626 §4.4.2, whose first byte is
    // below 4 where SIP's is a letter) are not SIP messages. Neither is
    // answered: no STUN server runs here.
    if datagram.iter().all(|c| matches!(c, b'\r' | b'\n'))
        || datagram.first().is_some_and(|c| *c < 4)
    {
        return;
    }
    match Message::parse(datagram.clone()) {
        Ok(message) => shared.deliver(message, Peer::new(Transport::Udp, source)),
        Err(error) => {
            Counters::count(&shared.counters.malformed);
            if let Some(response) = reject_malformed(&datagram, &error) {
                // Best effort, like any UDP send.
                let _ = socket.try_send_to(&response, source);
            }
        }
    }
}
