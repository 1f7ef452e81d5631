//! A relay worker: one thread, one `mio` event loop, many sessions.

use super::ports::LegSockets;
use super::{
    Command, Counters, Leg, LegSrtp, LegStats, RelayEvent, SessionId, SessionStats, TICK, Tapped,
};
use crate::dtmf::TelephoneEvent;
use crate::rtp::RtpPacket;
use crate::stats::StreamStats;
use bytes::Bytes;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use slab::Slab;
use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The token of the waker the handles use to deliver commands.
const WAKER: Token = Token(usize::MAX);
/// Datagrams read from one socket in one `recvmmsg` (quinn-udp's batch).
const BATCH: usize = quinn_udp::BATCH_SIZE;
/// Room for one datagram: more than any RTP packet on an Ethernet path.
const DATAGRAM: usize = 2048;
/// The G.711 clock, for jitter and DTMF durations when nothing else is
/// known: telephony audio runs at 8 kHz.
const CLOCK_RATE: u32 = 8000;

/// A session as the handle hands it over.
pub(super) struct NewSession {
    pub(super) id: SessionId,
    pub(super) legs: [LegSockets; 2],
    pub(super) stats: Arc<Mutex<SessionStats>>,
}

/// Where a peer's packets of one kind (RTP or RTCP) go, and whether that
/// was learned from the packets themselves.
#[derive(Debug, Default, Clone, Copy)]
struct Remote {
    addr: Option<SocketAddr>,
    latched: bool,
    /// When the latched source last sent.
    last: Option<Instant>,
}

struct LegState {
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
    tokens: [Option<Token>; 2],
    rtp_remote: Remote,
    rtcp_remote: Remote,
    srtp: Option<Box<LegSrtp>>,
    telephone_event: Option<u8>,
    /// Its peer's audio is not passed on ([`Session::set_muted`](super::Session::set_muted)).
    muted: bool,
    /// The RTP timestamp of the last digit reported: its end packet comes
    /// three times (RFC 4733 §2.5.1.4).
    last_digit: Option<u32>,
    quality: StreamStats,
    counters: LegStats,
}

impl LegState {
    fn mux(&self) -> bool {
        self.rtcp.is_none()
    }

    /// The socket and destination for a packet to this leg's peer.
    fn route(&self, rtcp: bool) -> Option<(&UdpSocket, SocketAddr)> {
        if rtcp && let Some(socket) = &self.rtcp {
            return Some((socket, self.rtcp_remote.addr?));
        }
        let remote = if rtcp {
            // rtcp-mux: RTCP goes where RTP goes.
            self.rtcp_remote.addr.or(self.rtp_remote.addr)
        } else {
            self.rtp_remote.addr
        };
        Some((&self.rtp, remote?))
    }
}

struct SessionState {
    id: SessionId,
    legs: [LegState; 2],
    tap: Option<mpsc::Sender<Tapped>>,
    stats: Arc<Mutex<SessionStats>>,
    /// When anything last arrived (or the session opened).
    last_heard: Instant,
    inactive_reported: bool,
}

/// Which socket a token stands for.
#[derive(Clone, Copy)]
struct Route {
    session: usize,
    leg: Leg,
    rtcp_socket: bool,
}

/// One packet ready to leave, in the out buffer.
#[derive(Clone, Copy)]
struct Outgoing {
    rtcp: bool,
    dest: SocketAddr,
    start: usize,
    len: usize,
}

/// The receive and send buffers, allocated once.
struct Buffers {
    /// One slot per datagram of a batch.
    slots: Vec<Vec<u8>>,
    meta: Vec<RecvMeta>,
    /// Packets on their way out, back to back, so a run of them for one
    /// destination leaves in one segmented send.
    out: Vec<u8>,
    outgoing: Vec<Outgoing>,
}

pub(super) struct Worker {
    poll: Poll,
    commands: std_mpsc::Receiver<Command>,
    events: mpsc::Sender<RelayEvent>,
    counters: Arc<Counters>,
    inactivity: Duration,
    relatch_after: Duration,
    udp: UdpSocketState,
    sessions: Slab<SessionState>,
    by_id: HashMap<SessionId, usize>,
    routes: Slab<Route>,
    buffers: Buffers,
}

impl Worker {
    pub(super) fn new(
        commands: std_mpsc::Receiver<Command>,
        events: mpsc::Sender<RelayEvent>,
        counters: Arc<Counters>,
        inactivity: Duration,
        relatch_after: Duration,
    ) -> io::Result<(Worker, Waker)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        // quinn-udp keeps what it learns of the platform (GSO support)
        // here; the probe socket only serves to build it. The sessions'
        // sockets are left as they are: quinn-udp would turn on GRO and
        // per-packet control messages (packet info, TOS) on them, which
        // RTP has no use for and which cost a little on every read.
        let probe = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
        let udp = UdpSocketState::new(UdpSockRef::from(&probe))?;
        let buffers = Buffers {
            slots: vec![vec![0; DATAGRAM]; BATCH],
            meta: vec![RecvMeta::default(); BATCH],
            out: Vec::with_capacity(BATCH * DATAGRAM),
            outgoing: Vec::with_capacity(BATCH),
        };
        let worker = Worker {
            poll,
            commands,
            events,
            counters,
            inactivity,
            relatch_after,
            udp,
            sessions: Slab::new(),
            by_id: HashMap::new(),
            routes: Slab::new(),
            buffers,
        };
        Ok((worker, waker))
    }

    /// The event loop; returns on [`Command::Stop`] or when every handle
    /// is gone.
    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now() + TICK;
        loop {
            let timeout = next_tick.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                return;
            }
            // Commands first: a packet that arrived with the command that
            // says where it goes (`set_remote`, `set_srtp`) must find it
            // applied.
            if !self.take_commands() {
                return;
            }
            let now = Instant::now();
            for event in &events {
                if event.token() == WAKER {
                    continue;
                }
                if let Some(route) = self.routes.get(event.token().0).copied() {
                    self.drain(route, now);
                }
            }
            if now >= next_tick {
                self.tick(now);
                next_tick = now + TICK;
            }
        }
    }

    /// Applies the queued commands; `false` when the worker must stop.
    fn take_commands(&mut self) -> bool {
        loop {
            let command = match self.commands.try_recv() {
                Ok(command) => command,
                Err(std_mpsc::TryRecvError::Empty) => return true,
                Err(std_mpsc::TryRecvError::Disconnected) => return false,
            };
            match command {
                Command::Open(new) => self.open(*new),
                Command::Close(id) => self.close(id),
                Command::Stop => return false,
                Command::Remote {
                    id,
                    leg,
                    rtp,
                    rtcp,
                    replace,
                } => {
                    if let Some(leg) = self.leg_mut(id, leg) {
                        if replace {
                            // The new peer's SDP address holds the latch
                            // as if it had just sent: the old peer's
                            // packets still on their way cannot take it,
                            // and a new peer behind NAT takes it once its
                            // SDP address is silent for `relatch_after`.
                            let now = Some(Instant::now());
                            let held = |addr| Remote {
                                addr: Some(addr),
                                latched: true,
                                last: now,
                            };
                            leg.rtp_remote = held(rtp);
                            leg.rtcp_remote = held(rtcp);
                        }
                        // The SDP address holds until the peer's own
                        // packets say otherwise.
                        if !leg.rtp_remote.latched {
                            leg.rtp_remote.addr = Some(rtp);
                        }
                        if !leg.rtcp_remote.latched {
                            leg.rtcp_remote.addr = Some(rtcp);
                        }
                    }
                }
                Command::Srtp { id, leg, srtp } => {
                    if let Some(leg) = self.leg_mut(id, leg) {
                        leg.srtp = srtp;
                    }
                }
                Command::TelephoneEvent {
                    id,
                    leg,
                    payload_type,
                } => {
                    if let Some(leg) = self.leg_mut(id, leg) {
                        leg.telephone_event = payload_type;
                    }
                }
                Command::Mute { id, leg, muted } => {
                    if let Some(leg) = self.leg_mut(id, leg) {
                        leg.muted = muted;
                    }
                }
                Command::Tap { id, tap } => {
                    if let Some(&key) = self.by_id.get(&id) {
                        self.sessions[key].tap = tap;
                    }
                }
            }
        }
    }

    fn leg_mut(&mut self, id: SessionId, leg: Leg) -> Option<&mut LegState> {
        let key = *self.by_id.get(&id)?;
        Some(&mut self.sessions[key].legs[leg.index()])
    }

    fn open(&mut self, new: NewSession) {
        let NewSession { id, legs, stats } = new;
        let entry = self.sessions.vacant_entry();
        let key = entry.key();
        let [a, b] = legs;
        let mut state = SessionState {
            id,
            legs: [leg_state(a), leg_state(b)],
            tap: None,
            stats,
            last_heard: Instant::now(),
            inactive_reported: false,
        };
        for leg in [Leg::A, Leg::B] {
            let leg_state = &mut state.legs[leg.index()];
            for rtcp_socket in [false, true] {
                let socket = if rtcp_socket {
                    match &mut leg_state.rtcp {
                        Some(socket) => socket,
                        None => continue,
                    }
                } else {
                    &mut leg_state.rtp
                };
                let token = Token(self.routes.insert(Route {
                    session: key,
                    leg,
                    rtcp_socket,
                }));
                if self
                    .poll
                    .registry()
                    .register(socket, token, Interest::READABLE)
                    .is_err()
                {
                    // Out of kernel memory for epoll: the leg stays deaf,
                    // its traffic counted as lost by the peers.
                    self.routes.remove(token.0);
                    continue;
                }
                leg_state.tokens[usize::from(rtcp_socket)] = Some(token);
            }
        }
        entry.insert(state);
        self.by_id.insert(id, key);
        self.counters.sessions.fetch_add(1, Ordering::Relaxed);
    }

    fn close(&mut self, id: SessionId) {
        let Some(key) = self.by_id.remove(&id) else {
            return;
        };
        let mut session = self.sessions.remove(key);
        for leg in &mut session.legs {
            for (n, token) in leg.tokens.iter().enumerate() {
                let Some(token) = token else { continue };
                self.routes.remove(token.0);
                let socket = if n == 0 {
                    Some(&mut leg.rtp)
                } else {
                    leg.rtcp.as_mut()
                };
                if let Some(socket) = socket {
                    let _ = self.poll.registry().deregister(socket);
                }
            }
        }
        publish(&mut session);
        self.counters.sessions.fetch_sub(1, Ordering::Relaxed);
        // The sockets close here, freeing the ports.
    }

    /// Publishes statistics and reports sessions gone silent.
    fn tick(&mut self, now: Instant) {
        for (_, session) in &mut self.sessions {
            publish(session);
            if !session.inactive_reported
                && now.saturating_duration_since(session.last_heard) >= self.inactivity
            {
                session.inactive_reported = true;
                let event = RelayEvent::Inactive {
                    session: session.id,
                };
                emit(&self.events, &self.counters, event);
            }
        }
    }

    /// Reads what a ready socket holds and relays it.
    fn drain(&mut self, route: Route, now: Instant) {
        let Some(session) = self.sessions.get_mut(route.session) else {
            return;
        };
        let buffers = &mut self.buffers;
        loop {
            let leg = &session.legs[route.leg.index()];
            let socket = if route.rtcp_socket {
                match &leg.rtcp {
                    Some(socket) => socket,
                    None => return,
                }
            } else {
                &leg.rtp
            };
            let mut slices: [IoSliceMut<'_>; BATCH] = {
                let mut slots = buffers.slots.iter_mut();
                std::array::from_fn(|_| match slots.next() {
                    Some(slot) => IoSliceMut::new(slot),
                    None => IoSliceMut::new(&mut []),
                })
            };
            let received =
                match self
                    .udp
                    .recv(UdpSockRef::from(socket), &mut slices, &mut buffers.meta)
                {
                    Ok(n) => n,
                    // Drained. Errors (an ICMP unreachable for an earlier
                    // send, say) end this round too; the socket goes on.
                    Err(_) => return,
                };
            buffers.out.clear();
            buffers.outgoing.clear();
            for (slot, meta) in buffers.slots.iter_mut().zip(&buffers.meta).take(received) {
                // Without GRO on the socket, a slot holds one datagram.
                let datagram = &mut slot[..meta.len.min(DATAGRAM)];
                let forwarded = relay(
                    session,
                    route,
                    datagram,
                    meta.addr,
                    now,
                    Context {
                        events: &self.events,
                        counters: &self.counters,
                        relatch_after: self.relatch_after,
                    },
                    &mut buffers.out,
                );
                if let Some(outgoing) = forwarded {
                    buffers.outgoing.push(outgoing);
                }
            }
            send(
                &self.udp,
                &mut session.legs[route.leg.other().index()],
                &buffers.out,
                &buffers.outgoing,
                &self.counters,
            );
            // Fewer than a full batch: the socket is empty. Linux signals
            // readiness again for every datagram that arrives after the
            // read, so no second read is needed to see `WouldBlock`.
            if received < BATCH {
                return;
            }
        }
    }
}

fn leg_state(sockets: LegSockets) -> LegState {
    LegState {
        rtp: UdpSocket::from_std(sockets.rtp),
        rtcp: sockets.rtcp.map(UdpSocket::from_std),
        tokens: [None, None],
        rtp_remote: Remote::default(),
        rtcp_remote: Remote::default(),
        srtp: None,
        telephone_event: None,
        muted: false,
        last_digit: None,
        quality: StreamStats::new(CLOCK_RATE),
        counters: LegStats::default(),
    }
}

/// Copies a session's figures where its handle reads them.
fn publish(session: &mut SessionState) {
    let mut legs = [LegStats::default(); 2];
    for (stats, leg) in legs.iter_mut().zip(&session.legs) {
        *stats = LegStats {
            lost: leg.quality.lost(),
            jitter_ms: leg.quality.jitter_ms(),
            remote: leg.rtp_remote.addr,
            latched: leg.rtp_remote.latched,
            ..leg.counters
        };
    }
    *session
        .stats
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = SessionStats { legs };
}

fn emit(events: &mpsc::Sender<RelayEvent>, counters: &Counters, event: RelayEvent) {
    if events.try_send(event).is_err() {
        counters.events_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// What `relay` needs of the worker besides the session.
#[derive(Clone, Copy)]
struct Context<'a> {
    events: &'a mpsc::Sender<RelayEvent>,
    counters: &'a Counters,
    relatch_after: Duration,
}

/// Checks one datagram from `route`'s leg and, if it is to be relayed,
/// appends it to `out` as the other leg's peer must receive it.
fn relay(
    session: &mut SessionState,
    route: Route,
    data: &mut [u8],
    source: SocketAddr,
    now: Instant,
    context: Context<'_>,
    out: &mut Vec<u8>,
) -> Option<Outgoing> {
    let from = route.leg;
    let [a, b] = &mut session.legs;
    let (leg, other) = match from {
        Leg::A => (a, &mut *b),
        Leg::B => (b, &mut *a),
    };
    // RFC 5761 §4: on a muxed port, RTCP packet types 200–204 sit where
    // RTP's marker bit and payload types 72–76 would.
    let rtcp = route.rtcp_socket || (leg.mux() && data.len() > 1 && (192..=223).contains(&data[1]));
    let Some(len) = accept(leg, rtcp, data, from, source, now, session.id, context) else {
        leg.counters.dropped += 1;
        context.counters.dropped.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    session.last_heard = now;
    leg.counters.received += 1;
    leg.counters.received_bytes += len as u64;
    if leg.muted && !rtcp {
        return None;
    }
    let packet = &data[..len];
    if !rtcp && let Some(tap) = &session.tap {
        // The only copy on the path, and only for a listener.
        let tapped = Tapped {
            leg: from,
            arrival: now,
            packet: Bytes::copy_from_slice(packet),
        };
        if tap.try_send(tapped).is_err() {
            context.counters.tap_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    let Some((_, dest)) = other.route(rtcp) else {
        leg.counters.dropped += 1;
        context.counters.dropped.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    let start = out.len();
    let room = match &other.srtp {
        Some(srtp) if rtcp => srtp.outbound.srtcp_overhead(),
        Some(srtp) => srtp.outbound.tag_len(),
        None => 0,
    };
    out.extend_from_slice(packet);
    out.resize(start + len + room, 0);
    let len = match &mut other.srtp {
        Some(srtp) => {
            let buf = &mut out[start..];
            let protected = if rtcp {
                srtp.outbound.protect_rtcp(buf, len)
            } else {
                srtp.outbound.protect_rtp(buf, len)
            };
            match protected {
                Ok(len) => len,
                Err(_) => {
                    out.truncate(start);
                    other.counters.dropped += 1;
                    context.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        None => len,
    };
    out.truncate(start + len);
    Some(Outgoing {
        rtcp,
        dest,
        start,
        len,
    })
}

/// Unprotects, checks and latches one packet from `leg`'s peer; its
/// plain length, or `None` to drop it.
#[allow(clippy::too_many_arguments)] // one packet's whole context, once
fn accept(
    leg: &mut LegState,
    rtcp: bool,
    data: &mut [u8],
    from: Leg,
    source: SocketAddr,
    now: Instant,
    id: SessionId,
    context: Context<'_>,
) -> Option<usize> {
    if data.len() < 8 || data[0] >> 6 != 2 {
        return None;
    }
    let len = match &mut leg.srtp {
        Some(srtp) if rtcp => srtp.inbound.unprotect_rtcp(data).ok()?,
        Some(srtp) => srtp.inbound.unprotect_rtp(data).ok()?,
        None => data.len(),
    };
    let packet = if rtcp {
        None
    } else {
        Some(RtpPacket::parse(&data[..len]).ok()?)
    };
    // Only a packet that passed (SRTP authentication included) may move
    // the latch.
    let remote = if rtcp {
        &mut leg.rtcp_remote
    } else {
        &mut leg.rtp_remote
    };
    if remote.addr != Some(source) || !remote.latched {
        let silent = remote
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= context.relatch_after);
        if remote.latched && !silent {
            return None;
        }
        remote.addr = Some(source);
        remote.latched = true;
        if !rtcp {
            let event = RelayEvent::Latched {
                session: id,
                leg: from,
                from: source,
            };
            emit(context.events, context.counters, event);
        }
    }
    remote.last = Some(now);
    if let Some(packet) = packet {
        leg.quality
            .record(packet.sequence(), packet.timestamp(), len, now);
        if leg.telephone_event == Some(packet.payload_type()) {
            digit(leg, &packet, from, id, context);
        }
    }
    Some(len)
}

/// Reports the end of an RFC 4733 event, once.
fn digit(
    leg: &mut LegState,
    packet: &RtpPacket<'_>,
    from: Leg,
    id: SessionId,
    context: Context<'_>,
) {
    let Ok(event) = TelephoneEvent::parse(packet.payload()) else {
        return;
    };
    if !event.end || leg.last_digit == Some(packet.timestamp()) {
        return;
    }
    leg.last_digit = Some(packet.timestamp());
    let event = RelayEvent::Dtmf {
        session: id,
        leg: from,
        digit: event.digit(),
        event: event.event,
        duration_ms: u32::from(event.duration) * 1000 / CLOCK_RATE,
    };
    emit(context.events, context.counters, event);
}

/// Sends what `relay` queued, from `to`'s sockets: each run of packets
/// for one destination in one size goes in one segmented `sendmsg`.
fn send(
    udp: &UdpSocketState,
    to: &mut LegState,
    out: &[u8],
    outgoing: &[Outgoing],
    counters: &Counters,
) {
    let max_segments = udp.max_gso_segments().max(1);
    let mut rest = outgoing;
    while let Some(first) = rest.first() {
        let run = rest
            .iter()
            .take(max_segments)
            .take_while(|o| o.rtcp == first.rtcp && o.dest == first.dest && o.len == first.len)
            .count();
        let bytes = run * first.len;
        let Some((socket, _)) = to.route(first.rtcp) else {
            return;
        };
        let transmit = Transmit {
            destination: first.dest,
            ecn: None,
            contents: &out[first.start..first.start + bytes],
            segment_size: (run > 1).then_some(first.len),
            src_ip: None,
        };
        match udp.try_send(UdpSockRef::from(socket), &transmit) {
            Ok(()) => {
                to.counters.sent += run as u64;
                to.counters.sent_bytes += bytes as u64;
                counters.relayed.fetch_add(run as u64, Ordering::Relaxed);
            }
            // A full socket buffer or a peer gone (ICMP): UDP loses
            // the packets, and the statistics say so.
            Err(_) => {
                to.counters.dropped += run as u64;
                counters.dropped.fetch_add(run as u64, Ordering::Relaxed);
            }
        }
        rest = &rest[run..];
    }
}
