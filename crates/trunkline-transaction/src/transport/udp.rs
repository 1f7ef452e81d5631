//! UDP: one datagram, one message (RFC 3261 §18.1.2, §18.2.1).

use super::{Counters, Incoming, Shared};
use crate::peer::{Peer, Transport};
use bytes::Bytes;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use trunkline_sip::{Error, Message, reject_malformed};

/// The most datagrams read before they are handed on together: under load
/// the socket holds several, and the transaction layer takes them in one
/// go (one lock, one wake-up) instead of one by one.
const BATCH: usize = 32;

/// Receives datagrams until shutdown.
pub(super) async fn receive(shared: Arc<Shared>, socket: Arc<UdpSocket>) {
    let stop = shared.stopped();
    tokio::pin!(stop);
    let limit = shared.config.max_message_size;
    // One byte more than the limit, so a datagram over it shows as longer
    // rather than being cut silently to a size that might parse.
    let mut buf = vec![0; limit.saturating_add(1)];
    let mut batch = Vec::with_capacity(BATCH);
    // Messages handed on since this task last let others run.
    let mut since_yield = 0;
    loop {
        let ready = tokio::select! {
            r = socket.readable() => r,
            () = &mut stop => return,
        };
        if ready.is_err() {
            continue;
        }
        // Everything the socket holds, up to a batch; `WouldBlock` clears
        // the readiness, and the next datagram sets it again.
        let mut drained = false;
        while batch.len() < BATCH {
            let (len, source) = match socket.try_recv_from(&mut buf) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                // ICMP errors for earlier sends surface here; the socket
                // goes on (after the next readiness check, so that an
                // error that kept coming could not spin here).
                Err(_) => break,
            };
            if len > limit {
                Counters::count(&shared.counters.malformed);
                // What arrived is cut short; answer (513) only if its
                // header section is whole.
                if let Some(response) = reject_malformed(&buf[..len], &Error::TooLarge { limit }) {
                    let _ = socket.try_send_to(&response, source);
                }
                continue;
            }
            // An exact-size copy: the message lives as long as its
            // transaction, and must not pin the receive buffer meanwhile.
            let datagram = Bytes::copy_from_slice(&buf[..len]);
            if let Some(message) = parse(&shared, &socket, datagram, source) {
                batch.push(Incoming {
                    message,
                    peer: Peer::new(Transport::Udp, source),
                });
            }
        }
        since_yield += batch.len();
        if !batch.is_empty() {
            shared.deliver_batch(&mut batch);
        }
        // A socket that keeps filling would keep this task running, and
        // the tasks that take what the layer hands on (the application's)
        // waiting: past a batch, let them run first.
        if !drained || since_yield >= BATCH {
            since_yield = 0;
            tokio::task::yield_now().await;
        }
    }
}

/// The message a datagram holds; a malformed one is counted and answered
/// where it can be.
fn parse(
    shared: &Shared,
    socket: &UdpSocket,
    datagram: Bytes,
    source: SocketAddr,
) -> Option<Message> {
    // Keep-alives (CRLF, or STUN per RFC 5626 §4.4.2, whose first byte is
    // below 4 where SIP's is a letter) are not SIP messages. Neither is
    // answered: no STUN server runs here.
    if datagram.iter().all(|c| matches!(c, b'\r' | b'\n'))
        || datagram.first().is_some_and(|c| *c < 4)
    {
        return None;
    }
    match Message::parse(datagram.clone()) {
        Ok(message) => Some(message),
        Err(error) => {
            Counters::count(&shared.counters.malformed);
            if let Some(response) = reject_malformed(&datagram, &error) {
                // Best effort, like any UDP send.
                let _ = socket.try_send_to(&response, source);
            }
            None
        }
    }
}
