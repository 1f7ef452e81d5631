//! Stream connections: TCP and TLS framed by Content-Length (RFC 3261
//! §18.3), and the accepting and connecting that WebSocket shares.

use super::{Counters, Transports, stopped, ws};
use crate::peer::{ConnectionId, Peer, Transport};
use bytes::{Bytes, BytesMut};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use trunkline_sip::{Decoder, Frame, reject_malformed};

/// How long a TCP connect or a TLS or WebSocket handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on a TCP, TLS, WS or WSS listener until shutdown.
pub(super) async fn accept(transports: Transports, transport: Transport, listener: TcpListener) {
    let stop = stopped(transports.stopped());
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut stop => return,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of file descriptors, most likely: let some close.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (id, (_, queue)) =
            transports.register(&mut transports.connections(), transport, remote);
        let peer = Peer {
            transport,
            addr: remote,
            connection: Some(id),
        };
        tokio::spawn(serve(transports.clone(), peer, tcp, queue, Side::Server));
    }
}

/// Opens the connection `id` to `peer` and serves it; what was queued
/// meanwhile goes out once it is up.
pub(super) async fn connect(
    transports: Transports,
    id: ConnectionId,
    peer: Peer,
    queue: mpsc::Receiver<Bytes>,
) {
    let peer = Peer {
        connection: Some(id),
        ..peer
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(peer.addr)).await {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            serve(transports, peer, tcp, queue, Side::Client).await;
        }
        // What was queued is lost; the transactions time out or retry.
        _ => transports.forget(id),
    }
}

/// Which end of the connection we are, for the TLS and WebSocket
/// handshakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Client,
    Server,
}

/// Runs the handshakes the transport needs, then the connection.
async fn serve(
    transports: Transports,
    peer: Peer,
    tcp: TcpStream,
    queue: mpsc::Receiver<Bytes>,
    side: Side,
) {
    let id = peer.connection;
    let tls = &transports.inner.tls;
    match peer.transport {
        Transport::Tcp => run(&transports, peer, tcp, queue).await,
        Transport::Tls => {
            if let Some(stream) = tls.handshake(tcp, peer.addr, side, HANDSHAKE_TIMEOUT).await {
                run(&transports, peer, stream, queue).await;
            }
        }
        Transport::Ws => ws::run(&transports, peer, tcp, queue, side).await,
        Transport::Wss => {
            if let Some(stream) = tls.handshake(tcp, peer.addr, side, HANDSHAKE_TIMEOUT).await {
                ws::run(&transports, peer, stream, queue, side).await;
            }
        }
        Transport::Udp => {}
    }
    if let Some(id) = id {
        transports.forget(id);
    }
}

/// Reads, frames and delivers messages; writes what the queue holds;
/// answers keep-alives; closes on idle, error, or shutdown.
async fn run<S: AsyncRead + AsyncWrite>(
    transports: &Transports,
    peer: Peer,
    stream: S,
    mut queue: mpsc::Receiver<Bytes>,
) {
    let config = &transports.inner.config;
    let counters = &transports.inner.counters;
    let (reader, writer) = tokio::io::split(stream);
    tokio::pin!(reader, writer);
    let stop = stopped(transports.stopped());
    tokio::pin!(stop);
    let mut decoder = Decoder::new(config.max_message_size);
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        tokio::select! {
            read = reader.read_buf(&mut buf) => {
                if !matches!(read, Ok(n) if n > 0) {
                    return;
                }
                loop {
                    let reply: Option<Bytes> = match decoder.decode(&mut buf) {
                        Ok(None) => break,
                        Ok(Some(Frame::Message(message))) => {
                            transports.deliver(message, peer);
                            None
                        }
                        Ok(Some(Frame::Malformed { error, raw })) => {
                            Counters::count(&counters.malformed);
                            reject_malformed(&raw, &error)
                        }
                        // RFC 5626 §4.4.1: a CRLF pong for a double-CRLF ping.
                        Ok(Some(Frame::Ping)) => Some(Bytes::from_static(b"\r\n")),
                        Ok(Some(Frame::Pong)) => None,
                        Err(error) => {
                            // The stream cannot be framed any more: answer if
                            // we can tell what it was, and close.
                            Counters::count(&counters.malformed);
                            if let Some(response) = reject_malformed(&buf, &error) {
                                let _ = writer.write_all(&response).await;
                            }
                            return;
                        }
                    };
                    if let Some(reply) = reply
                        && writer.write_all(&reply).await.is_err()
                    {
                        return;
                    }
                }
            }
            next = queue.recv() => {
                let Some(bytes) = next else { return };
                if writer.write_all(&bytes).await.is_err() {
                    return;
                }
                Counters::count(&counters.sent);
            }
            () = tokio::time::sleep(config.idle_timeout) => return,
            () = &mut stop => return,
        }
    }
}
