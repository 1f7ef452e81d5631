//! Stream connections: TCP and TLS framed by Content-Length (RFC 3261
//! §18.3), and the accepting and connecting that WebSocket shares.

use super::{Counters, HANDSHAKE_TIMEOUT, Shared, WRITE_TIMEOUT, ws};
use crate::peer::{ConnectionId, Peer, Transport};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use trunkline_sip::{Decoder, Frame, reject_malformed};

/// Accepts connections on a TCP, TLS, WS or WSS listener until shutdown.
pub(super) async fn accept(shared: Arc<Shared>, transport: Transport, listener: TcpListener) {
    let stop = shared.stopped();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut stop => return,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of file descriptors, most likely: let some close
                // rather than spin on the error.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let registered = {
            let mut connections = shared.connections();
            (connections.by_id.len() < shared.config.max_connections)
                .then(|| shared.register(&mut connections, transport, remote))
        };
        let Some((id, _, queue)) = registered else {
            Counters::count(&shared.counters.refused);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let peer = Peer {
            transport,
            addr: remote,
            connection: Some(id),
        };
        let registration = Registration {
            shared: shared.clone(),
            id,
        };
        tokio::spawn(serve(registration, peer, tcp, queue, Side::Server));
    }
}

/// Opens the connection `peer.connection` to `peer.addr` and serves it;
/// what was queued meanwhile goes out once it is up.
pub(super) async fn connect(
    shared: Arc<Shared>,
    id: ConnectionId,
    peer: Peer,
    queue: mpsc::Receiver<Bytes>,
) {
    let registration = Registration { shared, id };
    let peer = Peer {
        connection: Some(id),
        ..peer
    };
    let connecting = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(peer.addr));
    // A connection that cannot be opened is forgotten (the registration
    // drops) with what was queued on it; the transactions time out.
    if let Ok(Ok(tcp)) = connecting.await {
        let _ = tcp.set_nodelay(true);
        serve(registration, peer, tcp, queue, Side::Client).await;
    }
}

/// A connection in the table, forgotten when its task ends however it
/// ends.
struct Registration {
    shared: Arc<Shared>,
    id: ConnectionId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.forget(self.id);
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
    registration: Registration,
    peer: Peer,
    tcp: TcpStream,
    queue: mpsc::Receiver<Bytes>,
    side: Side,
) {
    let shared = &registration.shared;
    let tls = &shared.tls;
    match peer.transport {
        Transport::Tcp => run(shared, peer, tcp, queue).await,
        Transport::Tls => {
            if let Some(stream) = tls.handshake(tcp, peer.addr, side).await {
                run(shared, peer, stream, queue).await;
            }
        }
        Transport::Ws => ws::run(shared, peer, tcp, queue, side).await,
        Transport::Wss => {
            if let Some(stream) = tls.handshake(tcp, peer.addr, side).await {
                ws::run(shared, peer, stream, queue, side).await;
            }
        }
        // Never registered as a connection.
        Transport::Udp => {}
    }
}

/// Writes all of `bytes` out to the socket (flushed, so TLS records
/// leave rustls' buffer); `false` if the stream failed or the peer did not
/// read them within [`WRITE_TIMEOUT`].
async fn write<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> bool {
    let written = async {
        writer.write_all(bytes).await?;
        writer.flush().await
    };
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, written).await,
        Ok(Ok(()))
    )
}

/// What the bytes read so far call for.
enum Decoded {
    /// Nothing more to do until more bytes arrive.
    NeedMore,
    /// A message was delivered or a pong absorbed: decode on.
    Next,
    /// Send this (a pong, or the response to a malformed request), then
    /// decode on.
    Reply(Bytes),
    /// The stream cannot be framed any more: send this if any, then close.
    Close(Option<Bytes>),
}

/// Reads, frames and delivers messages; writes what the queue holds;
/// answers keep-alives; closes on idle, error, or shutdown.
async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    peer: Peer,
    stream: S,
    mut queue: mpsc::Receiver<Bytes>,
) {
    let config = &shared.config;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let stop = shared.stopped();
    tokio::pin!(stop);
    let mut decoder = Decoder::new(config.max_message_size);
    // The decoder refuses a message over the limit before the buffer holds
    // much more than that, so this grows at most to about twice the limit.
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        tokio::select! {
            read = reader.read_buf(&mut buf) => {
                if !matches!(read, Ok(n) if n > 0) {
                    return;
                }
                loop {
                    match decode(shared, &mut decoder, &mut buf, peer) {
                        Decoded::NeedMore => break,
                        Decoded::Next => {}
                        Decoded::Reply(reply) => {
                            if !write(&mut writer, &reply).await {
                                return;
                            }
                        }
                        Decoded::Close(reply) => {
                            if let Some(reply) = reply {
                                write(&mut writer, &reply).await;
                            }
                            return;
                        }
                    }
                }
            }
            next = queue.recv() => {
                let Some(bytes) = next else { return };
                if !write(&mut writer, &bytes).await {
                    return;
                }
                Counters::count(&shared.counters.sent);
            }
            // Restarted by every read and write above.
            () = tokio::time::sleep(config.idle_timeout) => return,
            () = &mut stop => return,
        }
    }
}

/// Takes the next frame from `buf` and deals with it.
fn decode(shared: &Arc<Shared>, decoder: &mut Decoder, buf: &mut BytesMut, peer: Peer) -> Decoded {
    let counters = &shared.counters;
    match decoder.decode(buf) {
        Ok(None) => Decoded::NeedMore,
        Ok(Some(Frame::Message(message))) => {
            shared.deliver(message, peer);
            Decoded::Next
        }
        Ok(Some(Frame::Malformed { error, raw })) => {
            Counters::count(&counters.malformed);
            match reject_malformed(&raw, &error) {
                Some(response) => Decoded::Reply(response),
                None => Decoded::Next,
            }
        }
        // RFC 5626 §4.4.1: a CRLF pong for a double-CRLF ping.
        Ok(Some(Frame::Ping)) => Decoded::Reply(Bytes::from_static(b"\r\n")),
        Ok(Some(Frame::Pong)) => Decoded::Next,
        Err(error) => {
            // No Content-Length, or over the limit: the next message's
            // start cannot be found. Answer if the header section is whole.
            Counters::count(&counters.malformed);
            Decoded::Close(reject_malformed(buf, &error))
        }
    }
}
