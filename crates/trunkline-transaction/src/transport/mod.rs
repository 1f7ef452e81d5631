//! Transports: the tokio glue between sockets and the sans-IO core.
//!
//! [`Transports::bind`] opens the listeners and returns a cheap handle and
//! one bounded queue of [`Incoming`] messages, whatever their transport.
//!
//! - **UDP** (RFC 3261 §18): one socket per listener; a datagram is one
//!   message. Sends never wait: `try_send_to`, a full socket buffer counts
//!   as a drop (the transaction layer retransmits).
//! - **TCP and TLS** (§18.3): each connection is one task that reads,
//!   frames by Content-Length ([`trunkline_sip::Decoder`]), answers RFC
//!   5626 keep-alives, and writes what its bounded queue holds. A
//!   connection is known by a [`ConnectionId`] and by its transport and
//!   remote address, so a response goes back over its request's connection
//!   and requests to the same peer reuse one connection. Connections idle
//!   longer than the idle timeout close.
//! - **WebSocket** (RFC 7118), plain or over TLS: the `sip` subprotocol,
//!   one SIP message per frame.
//!
//! Malformed input never stops a listener: a request that does not parse
//! gets the 400 (or 505, 416…) [`trunkline_sip::reject_malformed`] builds,
//! anything else is dropped; both are counted in [`Stats`]. A stream that
//! cannot be framed any more is closed.

mod stream;
mod tls;
mod udp;
mod ws;

pub use tls::{TlsIdentity, TlsVerify};

use crate::peer::{ConnectionId, Peer, Transmit, Transport};
use bytes::Bytes;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use trunkline_sip::Message;

/// One listening address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// The transport.
    pub transport: Transport,
    /// The address; port 0 picks a free one (see [`Transports::local_addr`]).
    pub addr: SocketAddr,
}

impl Listener {
    /// A listener of `transport` on `addr`.
    pub fn new(transport: Transport, addr: SocketAddr) -> Listener {
        Listener { transport, addr }
    }
}

/// How the transports are set up.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Where to listen.
    pub listeners: Vec<Listener>,
    /// Our certificate for TLS and WSS listeners (and for client
    /// authentication if a peer asks). Required for those listeners.
    pub tls_identity: Option<TlsIdentity>,
    /// How the certificates of peers we connect to are checked.
    pub tls_verify: TlsVerify,
    /// The largest message accepted, in bytes. 65 535 by default.
    pub max_message_size: usize,
    /// Messages waiting in the incoming queue, and in each connection's
    /// outgoing queue, before more are refused. 1024 by default.
    pub queue: usize,
    /// A stream connection with no traffic this long closes. 10 minutes by
    /// default (longer than the usual 30 s to 2 min keep-alive of RFC 5626).
    pub idle_timeout: Duration,
}

impl TransportConfig {
    /// `listeners` with the defaults above and no TLS identity.
    pub fn new(listeners: Vec<Listener>) -> TransportConfig {
        TransportConfig {
            listeners,
            tls_identity: None,
            tls_verify: TlsVerify::default(),
            max_message_size: 65_535,
            queue: 1024,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// A message that came in.
#[derive(Debug)]
pub struct Incoming {
    /// The message.
    pub message: Message,
    /// Where from: the transport, the source address and, for a stream,
    /// the connection.
    pub peer: Peer,
}

/// Why a message could not be handed to a transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No listener of that transport, so no socket to send from (UDP) or
    /// no Via address to give (streams).
    #[error("no {0} transport is configured")]
    NoTransport(Transport),
    /// The socket or connection queue is full.
    #[error("the {0} queue is full")]
    QueueFull(Transport),
    /// The connection has closed.
    #[error("the connection has closed")]
    Closed,
    /// The socket refused the datagram.
    #[error("sending: {0}")]
    Io(#[from] io::Error),
}

/// Counters, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Messages received and passed on.
    pub received: u64,
    /// Messages sent.
    pub sent: u64,
    /// Messages that did not parse (answered where possible).
    pub malformed: u64,
    /// Messages dropped because a queue was full.
    pub dropped: u64,
    /// Stream connections open now.
    pub connections: u64,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    sent: AtomicU64,
    malformed: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A stream connection as the handle sees it: its outgoing queue.
#[derive(Debug, Clone)]
struct Connection {
    transport: Transport,
    remote: SocketAddr,
    outgoing: mpsc::Sender<Bytes>,
}

#[derive(Debug, Default)]
struct Connections {
    by_id: HashMap<ConnectionId, Connection>,
    by_remote: HashMap<(Transport, SocketAddr), ConnectionId>,
}

struct Inner {
    config: TransportConfig,
    local: Vec<(Transport, SocketAddr)>,
    udp: Option<Arc<tokio::net::UdpSocket>>,
    tls: tls::Tls,
    connections: Mutex<Connections>,
    next_connection: AtomicU64,
    incoming: mpsc::Sender<Incoming>,
    counters: Counters,
    /// Flips to `true` on shutdown; every task watches it.
    stop: watch::Sender<bool>,
}

/// The transports: a cheap, cloneable handle on the listeners and
/// connections. [`Transports::shutdown`] stops every task.
#[derive(Clone)]
pub struct Transports {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Transports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transports")
            .field("local", &self.inner.local)
            .finish_non_exhaustive()
    }
}

impl Transports {
    /// Opens the listeners. The receiver yields every message that comes
    /// in, from any listener or connection.
    pub async fn bind(
        config: TransportConfig,
    ) -> io::Result<(Transports, mpsc::Receiver<Incoming>)> {
        let tls = tls::Tls::new(&config)?;
        let (incoming, receiver) = mpsc::channel(config.queue.max(1));
        let (stop, _) = watch::channel(false);
        let mut local = Vec::new();
        let mut udp = None;
        let mut stream_listeners = Vec::new();
        for listener in &config.listeners {
            match listener.transport {
                Transport::Udp => {
                    let socket = Arc::new(tokio::net::UdpSocket::bind(listener.addr).await?);
                    local.push((Transport::Udp, socket.local_addr()?));
                    // The first UDP listener sends; more UDP listeners only
                    // receive.
                    udp.get_or_insert_with(|| socket.clone());
                    stream_listeners.push(Bound::Udp(socket));
                }
                transport => {
                    let tcp = tokio::net::TcpListener::bind(listener.addr).await?;
                    local.push((transport, tcp.local_addr()?));
                    stream_listeners.push(Bound::Stream(transport, tcp));
                }
            }
        }
        let inner = Arc::new(Inner {
            config,
            local,
            udp,
            tls,
            connections: Mutex::new(Connections::default()),
            next_connection: AtomicU64::new(0),
            incoming,
            counters: Counters::default(),
            stop,
        });
        let transports = Transports { inner };
        for bound in stream_listeners {
            match bound {
                Bound::Udp(socket) => {
                    tokio::spawn(udp::receive(transports.clone(), socket));
                }
                Bound::Stream(transport, listener) => {
                    tokio::spawn(stream::accept(transports.clone(), transport, listener));
                }
            }
        }
        Ok((transports, receiver))
    }

    /// The address the listener of `transport` is bound to.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.inner
            .local
            .iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, a)| *a)
    }

    /// Sends without waiting: over UDP at once, over a stream through its
    /// connection's queue — the connection named in the peer, or the open
    /// one to that address, or a new one.
    pub fn send(&self, transmit: Transmit) -> Result<(), SendError> {
        let Transmit { peer, bytes } = transmit;
        if peer.transport == Transport::Udp {
            let socket = self
                .inner
                .udp
                .as_ref()
                .ok_or(SendError::NoTransport(Transport::Udp))?;
            return match socket.try_send_to(&bytes, peer.addr) {
                Ok(_) => {
                    Counters::count(&self.inner.counters.sent);
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    Counters::count(&self.inner.counters.dropped);
                    Err(SendError::QueueFull(Transport::Udp))
                }
                Err(e) => Err(SendError::Io(e)),
            };
        }
        let connection = self.connection_for(peer)?;
        match connection.outgoing.try_send(bytes) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Counters::count(&self.inner.counters.dropped);
                Err(SendError::QueueFull(peer.transport))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed),
        }
    }

    /// The connection a message to `peer` goes over, opened if needed.
    fn connection_for(&self, peer: Peer) -> Result<Connection, SendError> {
        let mut connections = self.connections();
        let known = peer
            .connection
            .filter(|id| connections.by_id.contains_key(id))
            .or_else(|| {
                connections
                    .by_remote
                    .get(&(peer.transport, peer.addr))
                    .copied()
            });
        if let Some(id) = known
            && let Some(connection) = connections.by_id.get(&id)
            && !connection.outgoing.is_closed()
        {
            return Ok(connection.clone());
        }
        if self.local_addr(peer.transport).is_none() {
            return Err(SendError::NoTransport(peer.transport));
        }
        let (id, outgoing) = self.register(&mut connections, peer.transport, peer.addr);
        drop(connections);
        tokio::spawn(stream::connect(self.clone(), id, peer, outgoing.1));
        Ok(outgoing.0)
    }

    /// Records a new connection; returns its id, its handle and the
    /// receiving end of its queue.
    fn register(
        &self,
        connections: &mut Connections,
        transport: Transport,
        remote: SocketAddr,
    ) -> (ConnectionId, (Connection, mpsc::Receiver<Bytes>)) {
        let id = ConnectionId(self.inner.next_connection.fetch_add(1, Ordering::Relaxed) + 1);
        let (outgoing, queue) = mpsc::channel(self.inner.config.queue.max(1));
        let connection = Connection {
            transport,
            remote,
            outgoing,
        };
        connections.by_id.insert(id, connection.clone());
        connections.by_remote.insert((transport, remote), id);
        (id, (connection, queue))
    }

    fn forget(&self, id: ConnectionId) {
        let mut connections = self.connections();
        if let Some(c) = connections.by_id.remove(&id)
            && connections.by_remote.get(&(c.transport, c.remote)) == Some(&id)
        {
            connections.by_remote.remove(&(c.transport, c.remote));
        }
    }

    fn connections(&self) -> MutexGuard<'_, Connections> {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands a received message on; a full queue drops it (counted), so a
    /// flood cannot grow memory. UDP peers retransmit.
    fn deliver(&self, message: Message, peer: Peer) {
        match self.inner.incoming.try_send(Incoming { message, peer }) {
            Ok(()) => Counters::count(&self.inner.counters.received),
            Err(_) => Counters::count(&self.inner.counters.dropped),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            received: c.received.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            connections: self.connections().by_id.len() as u64,
        }
    }

    /// Stops every listener and connection task.
    pub fn shutdown(&self) {
        self.inner.stop.send_replace(true);
    }

    fn stopped(&self) -> watch::Receiver<bool> {
        self.inner.stop.subscribe()
    }
}

enum Bound {
    Udp(Arc<tokio::net::UdpSocket>),
    Stream(Transport, tokio::net::TcpListener),
}

/// Resolves when `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
