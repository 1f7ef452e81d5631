//! Transports: the tokio glue between sockets and the sans-IO core.
//!
//! [`Transports::bind`] opens the listeners and returns a cheap, cloneable
//! handle and one bounded queue of [`Incoming`] messages, whatever their
//! transport. The handle sends ([`Transports::send`]); the receiver is
//! where everything that arrives waits for the transaction layer.
//!
//! # Who owns what
//!
//! - **UDP** (RFC 3261 §18): one socket per listener, read by one task; a
//!   datagram is one message. The first UDP listener's socket also sends,
//!   with `try_send_to`: a full socket buffer is a counted drop, never a
//!   wait (the transaction layer retransmits over UDP).
//! - **TCP and TLS** (§18.3): one task per listener accepts, and one task
//!   per connection owns the socket: it reads and frames by Content-Length
//!   ([`trunkline_sip::Decoder`]), answers RFC 5626 keep-alives (a CRLFCRLF
//!   ping gets a CRLF pong; neither is delivered), and writes what its
//!   connection's bounded queue holds.
//! - **WebSocket** (RFC 7118), plain or over TLS: the same connection task,
//!   after the handshake, with one SIP message per WebSocket message. The
//!   server accepts only the `sip` subprotocol.
//!
//! # Queues and their bounds
//!
//! Nothing waits on a full queue and nothing grows without bound:
//!
//! - the incoming queue holds [`TransportConfig::queue`] messages; when it
//!   is full a received message is dropped and counted
//!   ([`Stats::dropped`]) — a UDP peer retransmits, a stream peer's
//!   transaction times out, and memory stays flat under a flood. (An
//!   [`Endpoint`](crate::Endpoint) has no such queue: the task that reads
//!   a message hands it to the transaction layer itself, a UDP listener
//!   up to 32 datagrams at once, and the layer's bounded event channel
//!   refuses new requests with 503 when the application falls behind);
//! - each stream connection's outgoing queue holds as many; when it is
//!   full [`Transports::send`] fails with [`SendError::QueueFull`];
//! - a stream buffers at most one message of
//!   [`TransportConfig::max_message_size`] bytes; past
//!   [`TransportConfig::max_connections`] open connections, new ones from
//!   peers are closed on accept ([`Stats::refused`]).
//!
//! # Connections
//!
//! Each stream connection has a [`ConnectionId`], given to every message
//! that arrives on it, and is also known by its transport and remote
//! address. A message to a [`Peer`] goes over the connection the peer
//! names if it is still open (a response returns over its request's
//! connection, §18.2.2), else over an open connection of that transport to
//! that address (so requests to one peer share one connection), else over
//! a new connection the handle opens — and reads from, since responses
//! come back on it. A connection closes when either end closes it, when
//! nothing has been read or written for [`TransportConfig::idle_timeout`],
//! when the peer stops reading what we write for 30 seconds, or on
//! shutdown.
//!
//! # Malformed input
//!
//! Malformed input never stops a listener or panics. A UDP datagram or
//! WebSocket message that does not parse, or a stream message that was
//! framed but does not parse, gets the 400 (or 505, 416, 513…) that
//! [`trunkline_sip::reject_malformed`] builds if it was a request with
//! enough headers to answer, and is dropped otherwise; the connection goes
//! on. A stream that cannot be framed any more (no Content-Length, more
//! than the size limit) gets that response where possible and is closed.
//! Every case counts in [`Stats::malformed`].
//!
//! # Ending
//!
//! Every task ends when the last clone of the [`Transports`] handle is
//! dropped, or at [`Transports::shutdown`]: listeners close, connections
//! close, and the incoming queue ends once its messages are taken.

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
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use trunkline_sip::Message;

/// How long a TCP connect, or a TLS or WebSocket handshake, may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a write may wait for a peer that does not read before its
/// connection is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Stream connections open at once, accepted and opened; past it a
    /// connection from a peer is closed as soon as it is accepted (the
    /// ones we open are not limited). 10 000 by default.
    pub max_connections: usize,
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
            max_connections: 10_000,
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

/// Where received messages go: the queue [`Transports::bind`] returns, or
/// straight into a [`Receive`] (the [`Endpoint`](crate::Endpoint)'s
/// transaction layer) on the receiving task, without a hop to another
/// task.
enum Sink {
    Queue(mpsc::Sender<Incoming>),
    Direct(Arc<dyn Receive>),
}

/// Takes received messages on the task that read them (the UDP receive
/// loop, a stream connection's task); never waits.
pub(crate) trait Receive: Send + Sync + 'static {
    /// Handles `batch` (what one socket held, in order of arrival) and
    /// empties it. `transports` sends what comes of it.
    fn receive(&self, transports: &Sender<'_>, batch: &mut Vec<Incoming>);
}

/// The transports as a [`Receive`] sees them: a way to send.
pub(crate) struct Sender<'a>(&'a Arc<Shared>);

impl Sender<'_> {
    /// As [`Transports::send`].
    pub(crate) fn send(&self, transmit: Transmit) -> Result<(), SendError> {
        self.0.send(transmit)
    }
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
    /// The connection has closed, or the transports have shut down.
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
    /// Messages that did not parse or could not be framed (answered where
    /// possible).
    pub malformed: u64,
    /// Messages dropped because a queue was full.
    pub dropped: u64,
    /// Connections closed on accept because
    /// [`TransportConfig::max_connections`] were open.
    pub refused: u64,
    /// Stream connections open (or opening) now.
    pub connections: u64,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    sent: AtomicU64,
    malformed: AtomicU64,
    dropped: AtomicU64,
    refused: AtomicU64,
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

/// What the handle and every task share. Tasks hold this, not a
/// [`Transports`], so that dropping the last handle stops them.
struct Shared {
    config: TransportConfig,
    local: Vec<(Transport, SocketAddr)>,
    udp: Option<Arc<tokio::net::UdpSocket>>,
    tls: tls::Tls,
    connections: Mutex<Connections>,
    next_connection: AtomicU64,
    incoming: Sink,
    counters: Counters,
    /// Where connection tasks are spawned: [`Transports::send`] may be
    /// called from a thread outside the runtime.
    runtime: Handle,
    /// Flips to `true` on shutdown; every task watches it.
    stop: watch::Sender<bool>,
}

/// The transports: a cheap, cloneable handle on the listeners and
/// connections. Every task stops when the last clone is dropped, or at
/// [`Transports::shutdown`].
#[derive(Clone)]
pub struct Transports {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

/// Stops every task when the last [`Transports`] clone goes.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.stop.send_replace(true);
    }
}

impl std::fmt::Debug for Transports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transports")
            .field("local", &self.shared.local)
            .finish_non_exhaustive()
    }
}

/// What a UDP listener asks of the kernel for its queues: a burst of
/// calls (thousands of datagrams while the process is busy) waits in the
/// queue instead of being dropped and retransmitted 500 ms later. The
/// kernel caps it at `net.core.rmem_max` / `wmem_max`, which operators
/// under load raise.
const UDP_BUFFER: usize = 4 << 20;

/// A bound, non-blocking UDP socket with deep kernel queues.
fn udp_socket(addr: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller queue than asked still works.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER);
    let _ = socket.set_send_buffer_size(UDP_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

impl Transports {
    /// Opens the listeners and starts their tasks on the current tokio
    /// runtime. The receiver yields every message that comes in, from any
    /// listener or connection.
    ///
    /// Fails if an address cannot be bound, a TLS or WSS listener has no
    /// [`TlsIdentity`], or the TLS files cannot be read.
    pub async fn bind(
        config: TransportConfig,
    ) -> io::Result<(Transports, mpsc::Receiver<Incoming>)> {
        let (incoming, receiver) = mpsc::channel(config.queue.max(1));
        let transports = Transports::bind_to(config, Sink::Queue(incoming)).await?;
        Ok((transports, receiver))
    }

    /// Opens the listeners like [`Transports::bind`], but every message
    /// goes straight to `receive` on the task that read it.
    pub(crate) async fn bind_direct(
        config: TransportConfig,
        receive: Arc<dyn Receive>,
    ) -> io::Result<Transports> {
        Transports::bind_to(config, Sink::Direct(receive)).await
    }

    async fn bind_to(config: TransportConfig, incoming: Sink) -> io::Result<Transports> {
        let runtime = Handle::try_current().map_err(io::Error::other)?;
        let tls = tls::Tls::new(&config)?;
        let (stop, _) = watch::channel(false);
        let mut local = Vec::new();
        let mut udp = None;
        let mut bound = Vec::new();
        for listener in &config.listeners {
            match listener.transport {
                Transport::Udp => {
                    let socket = Arc::new(udp_socket(listener.addr)?);
                    // `try_send_to` fails until tokio has seen the socket
                    // writable once; a send right after `bind` must not.
                    socket.writable().await?;
                    local.push((Transport::Udp, socket.local_addr()?));
                    // The first UDP listener sends; more UDP listeners only
                    // receive.
                    udp.get_or_insert_with(|| socket.clone());
                    bound.push(Bound::Udp(socket));
                }
                transport => {
                    let tcp = tokio::net::TcpListener::bind(listener.addr).await?;
                    local.push((transport, tcp.local_addr()?));
                    bound.push(Bound::Stream(transport, tcp));
                }
            }
        }
        let shared = Arc::new(Shared {
            config,
            local,
            udp,
            tls,
            connections: Mutex::new(Connections::default()),
            next_connection: AtomicU64::new(0),
            incoming,
            counters: Counters::default(),
            runtime,
            stop,
        });
        for bound in bound {
            match bound {
                Bound::Udp(socket) => {
                    shared.runtime.spawn(udp::receive(shared.clone(), socket));
                }
                Bound::Stream(transport, listener) => {
                    shared
                        .runtime
                        .spawn(stream::accept(shared.clone(), transport, listener));
                }
            }
        }
        let owner = Arc::new(Owner(shared.clone()));
        Ok(Transports {
            shared,
            _owner: owner,
        })
    }

    /// The address the (first) listener of `transport` is bound to, with
    /// the port picked if port 0 was asked: what Via and Contact carry.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.shared.local_addr(transport)
    }

    /// Sends without waiting: over UDP at once, over a stream through its
    /// connection's queue — the connection named in the peer if it is
    /// open, or the open one of that transport to that address, or a new
    /// one. A new connection that fails to open loses what was queued on
    /// it; the transaction layer times out.
    pub fn send(&self, transmit: Transmit) -> Result<(), SendError> {
        self.shared.send(transmit)
    }

    /// The handle as a [`Receive`] sees the transports.
    pub(crate) fn sender(&self) -> Sender<'_> {
        Sender(&self.shared)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            received: c.received.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            connections: self.shared.connections().by_id.len() as u64,
        }
    }

    /// Stops every listener and connection task now, without waiting for
    /// the last handle to be dropped. Later sends fail with
    /// [`SendError::Closed`].
    pub fn shutdown(&self) {
        self.shared.stop.send_replace(true);
    }
}

impl Shared {
    /// See [`Transports::send`].
    fn send(self: &Arc<Self>, transmit: Transmit) -> Result<(), SendError> {
        if *self.stop.borrow() {
            return Err(SendError::Closed);
        }
        let Transmit { peer, bytes } = transmit;
        if peer.transport == Transport::Udp {
            let socket = self
                .udp
                .as_ref()
                .ok_or(SendError::NoTransport(Transport::Udp))?;
            return match socket.try_send_to(&bytes, peer.addr) {
                Ok(_) => {
                    Counters::count(&self.counters.sent);
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    Counters::count(&self.counters.dropped);
                    Err(SendError::QueueFull(Transport::Udp))
                }
                Err(e) => Err(SendError::Io(e)),
            };
        }
        let connection = self.connection_for(peer)?;
        match connection.outgoing.try_send(bytes) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Counters::count(&self.counters.dropped);
                Err(SendError::QueueFull(peer.transport))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed),
        }
    }

    fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.local
            .iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, a)| *a)
    }

    /// The connection a message to `peer` goes over, opened if needed.
    fn connection_for(self: &Arc<Self>, peer: Peer) -> Result<Connection, SendError> {
        let mut connections = self.connections();
        let open = |id: ConnectionId| {
            connections
                .by_id
                .get(&id)
                .filter(|c| c.transport == peer.transport && !c.outgoing.is_closed())
                .cloned()
        };
        let found = peer.connection.and_then(open).or_else(|| {
            let id = connections.by_remote.get(&(peer.transport, peer.addr));
            id.copied().and_then(open)
        });
        if let Some(connection) = found {
            return Ok(connection);
        }
        if self.local_addr(peer.transport).is_none() {
            return Err(SendError::NoTransport(peer.transport));
        }
        let (id, connection, queue) = self.register(&mut connections, peer.transport, peer.addr);
        drop(connections);
        self.runtime
            .spawn(stream::connect(self.clone(), id, peer, queue));
        Ok(connection)
    }

    /// Records a new connection; returns its id, its handle and the
    /// receiving end of its queue.
    fn register(
        &self,
        connections: &mut Connections,
        transport: Transport,
        remote: SocketAddr,
    ) -> (ConnectionId, Connection, mpsc::Receiver<Bytes>) {
        let id = ConnectionId(self.next_connection.fetch_add(1, Ordering::Relaxed) + 1);
        let (outgoing, queue) = mpsc::channel(self.config.queue.max(1));
        let connection = Connection {
            transport,
            remote,
            outgoing,
        };
        connections.by_id.insert(id, connection.clone());
        connections.by_remote.insert((transport, remote), id);
        (id, connection, queue)
    }

    /// Forgets a connection whose task has ended.
    fn forget(&self, id: ConnectionId) {
        let mut connections = self.connections();
        if let Some(c) = connections.by_id.remove(&id)
            && connections.by_remote.get(&(c.transport, c.remote)) == Some(&id)
        {
            connections.by_remote.remove(&(c.transport, c.remote));
        }
    }

    fn connections(&self) -> MutexGuard<'_, Connections> {
        // The table is consistent after every statement that changes it,
        // so a panic elsewhere while it was held leaves it usable.
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands a received message on; a full queue drops it (counted), so a
    /// flood cannot grow memory.
    fn deliver(self: &Arc<Self>, message: Message, peer: Peer) {
        let mut batch = vec![Incoming { message, peer }];
        self.deliver_batch(&mut batch);
    }

    /// Hands received messages on, in order, and empties `batch`.
    fn deliver_batch(self: &Arc<Self>, batch: &mut Vec<Incoming>) {
        match &self.incoming {
            Sink::Queue(queue) => {
                for incoming in batch.drain(..) {
                    match queue.try_send(incoming) {
                        Ok(()) => Counters::count(&self.counters.received),
                        Err(_) => Counters::count(&self.counters.dropped),
                    }
                }
            }
            Sink::Direct(receive) => {
                let count = batch.len() as u64;
                self.counters.received.fetch_add(count, Ordering::Relaxed);
                receive.receive(&Sender(self), batch);
                batch.clear();
            }
        }
    }

    /// Resolves at shutdown.
    fn stopped(&self) -> impl Future<Output = ()> + use<> {
        let mut stop = self.stop.subscribe();
        async move {
            // An error means the sender is gone, which is a stop too.
            let _ = stop.wait_for(|stopped| *stopped).await;
        }
    }
}

enum Bound {
    Udp(Arc<tokio::net::UdpSocket>),
    Stream(Transport, tokio::net::TcpListener),
}
