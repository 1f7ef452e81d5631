//! The RTP relay (feature `relay`): media anchored between two legs of a
//! call, each leg a pair of local UDP ports the SDP of its side names.
//!
//! ```text
//!  peer A ──► leg A socket ─┐                 ┌─► leg B socket ──► peer B
//!                           ├─ worker thread ─┤
//!  peer A ◄── leg A socket ◄┘  (many sessions)└── leg B socket ◄── peer B
//! ```
//!
//! - **Ports** come from a configured range: an even RTP port with RTCP on
//!   the next one, or one port for both (rtcp-mux, RFC 5761).
//! - **Symmetric RTP with latching**: a leg sends to where its peer's SDP
//!   points until the first packet arrives from the peer; from then on it
//!   sends to where that packet came from (the peer's NAT mapping). A
//!   different source takes over only after the latched one has been
//!   silent for [`RelayConfig::relatch_after`], so a stray or spoofed
//!   packet cannot steal a live stream.
//! - **SRTP per leg**, independently: packets from an SRTP leg are
//!   unprotected as they arrive, packets to it protected as they leave, so
//!   an SRTP phone can talk to a plain RTP trunk. RTCP is passed through,
//!   turned into SRTCP or back the same way.
//! - **Events** ([`RelayEvent`]) come out on one bounded channel: a leg
//!   latched, an RFC 4733 digit ended, a session fell silent for
//!   [`RelayConfig::inactivity_timeout`].
//! - **Taps** ([`Session::tap`]) copy each relayed RTP packet to a bounded
//!   channel, for recording; a session without a tap copies nothing.
//!
//! # The fast path
//!
//! A few worker threads (not a task per stream) each own many sessions
//! and run their own `mio` event loop over the sessions' sockets. A ready
//! socket is read with `recvmmsg` (through `quinn-udp`) up to 32
//! datagrams at a time; what goes to one destination in one size leaves
//! in one `sendmsg` with UDP segmentation offload. Buffers are allocated
//! once per worker: relaying a packet allocates nothing. The handle talks
//! to the workers through a command queue and reads statistics the worker
//! publishes every [`TICK`].

mod ports;
mod worker;

use crate::srtp::SrtpContext;
use bytes::Bytes;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub use ports::PortAllocator;

/// How often a worker checks for inactive sessions and publishes
/// statistics.
pub const TICK: Duration = Duration::from_millis(250);

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The address the relay's sockets bind to. Loopback by default.
    pub address: IpAddr,
    /// The first and last port of the range ports are taken from
    /// (inclusive). 20000–29999 by default.
    pub ports: (u16, u16),
    /// Worker threads; sessions are spread over them. 2 by default.
    pub workers: usize,
    /// A session from which neither leg has received anything this long
    /// is reported [`RelayEvent::Inactive`] (once). 60 s by default.
    pub inactivity_timeout: Duration,
    /// A latched leg takes a new source address only after the latched
    /// one has been silent this long. 2 s by default.
    pub relatch_after: Duration,
    /// Events waiting to be taken; past it, events are dropped and
    /// counted. 4096 by default.
    pub events: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: (20000, 29999),
            workers: 2,
            inactivity_timeout: Duration::from_secs(60),
            relatch_after: Duration::from_secs(2),
            events: 4096,
        }
    }
}

/// One side of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The first leg (by convention the caller's).
    A,
    /// The second leg (the callee's).
    B,
}

impl Leg {
    fn index(self) -> usize {
        match self {
            Leg::A => 0,
            Leg::B => 1,
        }
    }

    /// The leg across the session from this one.
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }
}

/// Identifies a session in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// What the relay reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// A leg learned where its peer really sends from (first packet, or a
    /// new source after the old one went silent).
    Latched {
        /// The session.
        session: SessionId,
        /// The leg.
        leg: Leg,
        /// The peer's address, where the leg now sends.
        from: SocketAddr,
    },
    /// An RFC 4733 telephone event ended on a leg (reported once, though
    /// its end packet comes three times).
    Dtmf {
        /// The session.
        session: SessionId,
        /// The leg the digit came from.
        leg: Leg,
        /// The key (`0`–`9`, `*`, `#`, `A`–`D`), or `None` for another
        /// event code.
        digit: Option<char>,
        /// The event code.
        event: u8,
        /// How long the key was pressed, in milliseconds.
        duration_ms: u32,
    },
    /// Nothing was received on either leg for the inactivity timeout.
    Inactive {
        /// The session.
        session: SessionId,
    },
}

/// Where a leg listens: the addresses its side's SDP carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegAddrs {
    /// RTP.
    pub rtp: SocketAddr,
    /// RTCP: the next port, or the RTP port itself with rtcp-mux.
    pub rtcp: SocketAddr,
}

/// How a session's legs are opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionOptions {
    /// RTP and RTCP share one port on leg A (RFC 5761).
    pub rtcp_mux_a: bool,
    /// RTP and RTCP share one port on leg B.
    pub rtcp_mux_b: bool,
}

/// SRTP on a leg: one context for what its peer sends, one for what the
/// relay sends it (RFC 3711: each direction has its own keys, from the
/// offer's and the answer's `a=crypto`).
#[derive(Debug)]
pub struct LegSrtp {
    /// Unprotects the packets the peer sends.
    pub inbound: SrtpContext,
    /// Protects the packets sent to the peer.
    pub outbound: SrtpContext,
}

/// An RTP packet a tap saw, as it arrived (unprotected if its leg is
/// SRTP).
#[derive(Debug, Clone)]
pub struct Tapped {
    /// The leg it came from.
    pub leg: Leg,
    /// When the worker read it.
    pub arrival: Instant,
    /// The whole RTP packet, header included.
    pub packet: Bytes,
}

/// What one leg has received and sent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LegStats {
    /// RTP and RTCP packets received from the peer and accepted.
    pub received: u64,
    /// Their bytes.
    pub received_bytes: u64,
    /// Packets sent to the peer.
    pub sent: u64,
    /// Their bytes.
    pub sent_bytes: u64,
    /// Packets dropped: malformed, failed SRTP authentication or replay,
    /// from a source that is not the latched peer, nowhere to send them,
    /// or a send that failed.
    pub dropped: u64,
    /// RTP packets lost on the way from the peer (RFC 3550 A.3).
    pub lost: u64,
    /// Interarrival jitter of the peer's RTP, in milliseconds (A.8).
    pub jitter_ms: f64,
    /// Where the leg sends: the latched peer, or the address set from SDP.
    pub remote: Option<SocketAddr>,
    /// Whether `remote` was learned from the peer's packets.
    pub latched: bool,
}

/// Both legs of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SessionStats {
    /// Leg A, then leg B.
    pub legs: [LegStats; 2],
}

impl SessionStats {
    /// One leg's figures.
    pub fn leg(&self, leg: Leg) -> &LegStats {
        &self.legs[leg.index()]
    }
}

/// What the whole relay has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Sessions open now.
    pub sessions: u64,
    /// Packets relayed (received on one leg and sent on the other).
    pub relayed: u64,
    /// Packets dropped, all reasons together.
    pub dropped: u64,
    /// Events dropped because nobody took them in time.
    pub events_dropped: u64,
    /// Packets a full tap had no room for.
    pub tap_dropped: u64,
}

/// Counters every worker adds to.
#[derive(Debug, Default)]
struct Counters {
    sessions: AtomicU64,
    relayed: AtomicU64,
    dropped: AtomicU64,
    events_dropped: AtomicU64,
    tap_dropped: AtomicU64,
}

/// A request from a handle to the worker that owns the session.
enum Command {
    Open(Box<worker::NewSession>),
    Remote {
        id: SessionId,
        leg: Leg,
        rtp: SocketAddr,
        rtcp: SocketAddr,
        /// A new peer: the old one's latch goes.
        replace: bool,
    },
    Srtp {
        id: SessionId,
        leg: Leg,
        srtp: Option<Box<LegSrtp>>,
    },
    TelephoneEvent {
        id: SessionId,
        leg: Leg,
        payload_type: Option<u8>,
    },
    Tap {
        id: SessionId,
        tap: Option<mpsc::Sender<Tapped>>,
    },
    Mute {
        id: SessionId,
        leg: Leg,
        muted: bool,
    },
    Close(SessionId),
    Stop,
}

/// The way to one worker.
struct WorkerHandle {
    commands: std_mpsc::Sender<Command>,
    waker: mio::Waker,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl WorkerHandle {
    fn send(&self, command: Command) {
        // A worker that has stopped has dropped its sessions already; a
        // command for it has nothing left to act on.
        if self.commands.send(command).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

struct Shared {
    ports: PortAllocator,
    workers: Vec<WorkerHandle>,
    next_session: AtomicU64,
    next_worker: AtomicUsize,
    counters: Arc<Counters>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.send(Command::Stop);
        }
        for worker in &self.workers {
            let thread = worker
                .thread
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take();
            if let Some(thread) = thread {
                let _ = thread.join();
            }
        }
    }
}

/// The relay: a cheap, cloneable handle. Its workers stop, closing every
/// session, when the last handle and the last [`Session`] are dropped.
#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("workers", &self.shared.workers.len())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Starts the worker threads. The receiver yields the events of every
    /// session.
    pub fn start(config: RelayConfig) -> io::Result<(Relay, mpsc::Receiver<RelayEvent>)> {
        let ports = PortAllocator::new(config.address, config.ports.0, config.ports.1)?;
        let (events, receiver) = mpsc::channel(config.events.max(1));
        let counters = Arc::new(Counters::default());
        let mut workers = Vec::new();
        for n in 0..config.workers.max(1) {
            let (commands, queue) = std_mpsc::channel();
            let (worker, waker) = worker::Worker::new(
                queue,
                events.clone(),
                counters.clone(),
                config.inactivity_timeout,
                config.relatch_after,
            )?;
            let thread = std::thread::Builder::new()
                .name(format!("rtp-relay-{n}"))
                .spawn(move || worker.run())?;
            workers.push(WorkerHandle {
                commands,
                waker,
                thread: Mutex::new(Some(thread)),
            });
        }
        let shared = Arc::new(Shared {
            ports,
            workers,
            next_session: AtomicU64::new(1),
            next_worker: AtomicUsize::new(0),
            counters,
        });
        Ok((Relay { shared }, receiver))
    }

    /// Opens a session: two legs with their ports, on the next worker in
    /// turn. Fails when the port range has no free pair left.
    pub fn open(&self, options: SessionOptions) -> io::Result<Session> {
        let shared = &self.shared;
        let a = shared.ports.allocate(options.rtcp_mux_a)?;
        let b = shared.ports.allocate(options.rtcp_mux_b)?;
        let id = SessionId(shared.next_session.fetch_add(1, Ordering::Relaxed));
        let local = [a.addrs()?, b.addrs()?];
        let stats = Arc::new(Mutex::new(SessionStats::default()));
        let worker = shared.next_worker.fetch_add(1, Ordering::Relaxed) % shared.workers.len();
        shared.workers[worker].send(Command::Open(Box::new(worker::NewSession {
            id,
            legs: [a, b],
            stats: stats.clone(),
        })));
        Ok(Session {
            id,
            local,
            worker,
            stats,
            relay: self.clone(),
        })
    }

    /// The relay's counters.
    pub fn stats(&self) -> RelayStats {
        let c = &self.shared.counters;
        RelayStats {
            sessions: c.sessions.load(Ordering::Relaxed),
            relayed: c.relayed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            events_dropped: c.events_dropped.load(Ordering::Relaxed),
            tap_dropped: c.tap_dropped.load(Ordering::Relaxed),
        }
    }
}

/// One relayed call's media. Dropping it closes the session and frees its
/// ports.
#[derive(Debug)]
pub struct Session {
    id: SessionId,
    local: [LegAddrs; 2],
    worker: usize,
    stats: Arc<Mutex<SessionStats>>,
    relay: Relay,
}

impl Session {
    /// The session's id, as events carry it.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Where `leg` listens: what the SDP sent to that leg's peer carries.
    pub fn local(&self, leg: Leg) -> LegAddrs {
        self.local[leg.index()]
    }

    fn send(&self, command: Command) {
        self.relay.shared.workers[self.worker].send(command);
    }

    /// Where `leg` sends until it latches: the address and port of its
    /// peer's SDP. `rtcp` is the peer's RTCP address (`a=rtcp`, port + 1,
    /// or the RTP address with rtcp-mux).
    pub fn set_remote(&self, leg: Leg, rtp: SocketAddr, rtcp: SocketAddr) {
        self.remote(leg, rtp, rtcp, false);
    }

    /// A new peer on `leg` (a transfer): it sends to `rtp`/`rtcp` at once,
    /// and the latch moves to that address as if the new peer had just
    /// sent from it, so the old peer's packets still on their way are
    /// dropped (a new peer sending from elsewhere, behind NAT, takes the
    /// latch once the address is silent for `relatch_after`).
    pub fn replace_remote(&self, leg: Leg, rtp: SocketAddr, rtcp: SocketAddr) {
        self.remote(leg, rtp, rtcp, true);
    }

    fn remote(&self, leg: Leg, rtp: SocketAddr, rtcp: SocketAddr, replace: bool) {
        let id = self.id;
        self.send(Command::Remote {
            id,
            leg,
            rtp,
            rtcp,
            replace,
        });
    }

    /// Turns SRTP on `leg` on (or off with `None`), as the SDP exchange
    /// with that leg's peer agreed. The other leg is unaffected.
    pub fn set_srtp(&self, leg: Leg, srtp: Option<LegSrtp>) {
        let id = self.id;
        let srtp = srtp.map(Box::new);
        self.send(Command::Srtp { id, leg, srtp });
    }

    /// The RFC 4733 `telephone-event` payload type `leg`'s peer uses, so
    /// its digits are reported ([`RelayEvent::Dtmf`]); `None` stops it.
    pub fn set_telephone_event(&self, leg: Leg, payload_type: Option<u8>) {
        let id = self.id;
        self.send(Command::TelephoneEvent {
            id,
            leg,
            payload_type,
        });
    }

    /// Stops relaying `leg`'s peer's audio to the other leg (and to the
    /// tap), or starts again. Its RTCP still passes, and its packets still
    /// latch and count in its statistics: the stream is alive, only not
    /// heard.
    pub fn set_muted(&self, leg: Leg, muted: bool) {
        let id = self.id;
        self.send(Command::Mute { id, leg, muted });
    }

    /// Copies every RTP packet relayed from now on, both legs, to a
    /// channel holding up to `capacity`; packets that find it full are
    /// dropped and counted in [`RelayStats::tap_dropped`] (the relay never
    /// waits). Replaces an earlier tap.
    pub fn tap(&self, capacity: usize) -> mpsc::Receiver<Tapped> {
        let (tap, receiver) = mpsc::channel(capacity.max(1));
        let id = self.id;
        self.send(Command::Tap { id, tap: Some(tap) });
        receiver
    }

    /// Stops copying packets to the tap.
    pub fn untap(&self) {
        let id = self.id;
        self.send(Command::Tap { id, tap: None });
    }

    /// The session's figures as of the worker's last [`TICK`].
    pub fn stats(&self) -> SessionStats {
        *self
            .stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.send(Command::Close(self.id));
    }
}
