//! The transaction table: RFC 3261 §17 client and server transactions with
//! the RFC 6026 Accepted states, as one sans-IO state machine. Time and
//! messages go in through `handle_*`; packets, events and the next timer
//! come out through `poll_*`.

use crate::config::Timers;
use crate::dialog::{Dialog, DialogId, DialogState};
use crate::key::{AckKey, ClientKey, MergeKey, ServerKey, top_via};
use crate::peer::{Peer, Transmit, Transport};
use crate::{Error, new_branch, new_tag};
use bytes::Bytes;
use bytestring::ByteString;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use trunkline_sip::{HeaderName, Message, MessageBuilder, Method, StatusCode};

/// A client transaction: a request this side sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(u64);

/// A server transaction: a request this side received and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(u64);

/// What the transaction layer tells the application (the TU).
#[derive(Debug, Clone)]
pub enum Event {
    /// A new request. Answer it with [`Transactions::respond`] on `tx`; an
    /// ACK has no transaction (`tx` is `None`) and needs no answer.
    /// Retransmissions are absorbed and never reported.
    Request {
        /// The transaction to answer on.
        tx: Option<ServerTxId>,
        /// The request, its top Via stamped with `received` and `rport`
        /// where RFC 3261 §18.2.1 and RFC 3581 ask.
        request: Message,
        /// Where it came from.
        peer: Peer,
        /// The dialog it belongs to, for a request with a To tag (one
        /// for an unknown dialog gets 481 from the layer and is not
        /// reported).
        dialog: Option<DialogId>,
    },
    /// A response to a request sent with [`Transactions::send_request`]:
    /// every provisional one, the final one once, and for an INVITE every
    /// 2xx with a new To tag (a forked call, RFC 3261 §13.2.2.4).
    Response {
        /// The transaction.
        tx: ClientTxId,
        /// The response.
        response: Message,
        /// The dialog it created, updated or belongs to.
        dialog: Option<DialogId>,
    },
    /// No final response came in time (timer B or F, or 64·T1 after a
    /// CANCEL): act as on a 408 (RFC 3261 §8.1.3.1).
    Timeout {
        /// The transaction, now ended.
        tx: ClientTxId,
    },
    /// A CANCEL matched this INVITE before its final response. The layer
    /// answered the CANCEL with 200; the application answers the INVITE,
    /// normally with 487 (RFC 3261 §9.2).
    Cancelled {
        /// The INVITE's transaction.
        tx: ServerTxId,
    },
    /// A 2xx to this INVITE was retransmitted for 64·T1 without an ACK:
    /// the session should end with a BYE (RFC 3261 §13.3.1.4).
    AckTimeout {
        /// The INVITE's transaction, now ended.
        tx: ServerTxId,
    },
    /// A dialog ended and was freed: BYE sent or received, a failure
    /// ending an early dialog, 481 or a timeout on a request in it.
    DialogEnded {
        /// The dialog.
        id: DialogId,
    },
    /// A 2xx to an INVITE that matches no transaction any more: a late
    /// answer from another fork. A UA acknowledges it and hangs up.
    StrayResponse {
        /// The response.
        response: Message,
        /// Where it came from.
        peer: Peer,
    },
}

/// Counters of what the layer absorbed or gave up on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Requests and responses retransmitted by timers A, E, G and the 2xx
    /// retransmission.
    pub retransmissions: u64,
    /// Retransmitted requests and responses absorbed by a transaction.
    pub absorbed: u64,
    /// Client transactions that timed out (timer B, F).
    pub timeouts: u64,
    /// Responses matching no transaction.
    pub stray_responses: u64,
    /// Requests answered 482 as merged (RFC 3261 §8.2.2.2).
    pub merged_requests: u64,
    /// Requests dropped because they lack what matching needs (Via, CSeq…).
    pub unmatchable: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    /// INVITE "Calling", non-INVITE "Trying": nothing heard yet.
    Calling,
    Proceeding,
    Completed,
    /// RFC 6026: a 2xx to the INVITE arrived; more may follow.
    Accepted,
}

#[derive(Debug)]
enum Cancel {
    NotAsked,
    /// Asked before any provisional response: sent when one arrives
    /// (RFC 3261 §9.1).
    Pending,
    Sent,
}

#[derive(Debug)]
struct ClientTx {
    key: ClientKey,
    request: Message,
    transmit: Transmit,
    state: ClientState,
    interval: Duration,
    retransmit_at: Option<Instant>,
    timeout_at: Option<Instant>,
    /// Whether the application hears of this transaction (not for the
    /// CANCELs the layer sends itself).
    report: bool,
    cancel: Cancel,
    /// In Accepted: the To tag of every 2xx, with the ACK the application
    /// sent for it, resent on each retransmission of that 2xx.
    answered: Vec<(ByteString, Option<Transmit>)>,
    /// The dialogs this INVITE created (early ones end with its failure).
    dialogs: Vec<DialogId>,
    /// The dialog a request sent in one belongs to.
    in_dialog: Option<DialogId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    /// Non-INVITE "Trying": no response yet.
    Trying,
    Proceeding,
    Completed,
    /// INVITE: the ACK for a non-2xx arrived.
    Confirmed,
    /// RFC 6026: a 2xx was sent; it is retransmitted until its ACK.
    Accepted,
}

#[derive(Debug)]
struct ServerTx {
    key: ServerKey,
    request: Message,
    /// Where responses go (RFC 3261 §18.2.2).
    peer: Peer,
    state: ServerState,
    last_response: Option<Bytes>,
    interval: Duration,
    retransmit_at: Option<Instant>,
    timeout_at: Option<Instant>,
    trying_at: Option<Instant>,
    merge: Option<MergeKey>,
    ack: Option<AckKey>,
    /// The dialog the request came in, or the one its answer created.
    dialog: Option<DialogId>,
}

impl ServerTx {
    fn is_invite(&self) -> bool {
        match &self.key {
            ServerKey::Branch { method, .. } | ServerKey::Legacy { method, .. } => {
                *method == Method::Invite
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerRef {
    Client(u64),
    Server(u64),
}

/// What the transactions produce, apart from the table itself so a
/// transaction can write to it while borrowed.
#[derive(Debug, Default)]
struct Output {
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    timers: BinaryHeap<Reverse<(Instant, TimerRef)>>,
    stats: Stats,
}

impl Output {
    fn arm(&mut self, slot: &mut Option<Instant>, at: Instant, timer: TimerRef) {
        *slot = Some(at);
        self.timers.push(Reverse((at, timer)));
    }
}

/// The transaction layer of one SIP endpoint, without I/O.
///
/// ```
/// use std::time::Instant;
/// use trunkline_sip::Message;
/// use trunkline_transaction::{Event, Peer, Transactions, Transport};
///
/// let mut layer = Transactions::default();
/// let peer = Peer::new(Transport::Udp, "127.0.0.1:5060".parse().unwrap());
/// let options = Message::parse_slice(
///     b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n\
///       Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK7f3a\r\n\
///       From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\n\
///       Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n",
/// )?;
/// let now = Instant::now();
/// let tx = layer.send_request(now, options, peer).unwrap();
/// assert!(layer.poll_transmit().is_some());
/// // Nothing heard: timer E retransmits after T1.
/// layer.handle_timeout(now + layer.timers().t1);
/// assert!(layer.poll_transmit().is_some());
/// // Nothing heard for 64·T1: timer F ends the transaction.
/// layer.handle_timeout(now + layer.timers().transaction_timeout());
/// while layer.poll_transmit().is_some() {}
/// assert!(matches!(layer.poll_event(), Some(Event::Timeout { tx: t }) if t == tx));
/// assert!(layer.is_empty());
/// # Ok::<(), trunkline_sip::Error>(())
/// ```
#[derive(Debug)]
pub struct Transactions {
    timers: Timers,
    next_id: u64,
    clients: HashMap<u64, ClientTx>,
    client_keys: HashMap<ClientKey, u64>,
    servers: HashMap<u64, ServerTx>,
    server_keys: HashMap<ServerKey, u64>,
    merges: HashMap<MergeKey, u64>,
    acks: HashMap<AckKey, u64>,
    dialogs: HashMap<DialogId, Dialog>,
    /// Our `host:port` for the Via of each transport we send on.
    sent_by: Vec<(Transport, ByteString)>,
    out: Output,
}

impl Default for Transactions {
    fn default() -> Self {
        Transactions::new(Timers::default())
    }
}

impl Transactions {
    /// An empty table using `timers`.
    pub fn new(timers: Timers) -> Transactions {
        Transactions {
            timers,
            next_id: 0,
            clients: HashMap::new(),
            client_keys: HashMap::new(),
            servers: HashMap::new(),
            server_keys: HashMap::new(),
            merges: HashMap::new(),
            acks: HashMap::new(),
            dialogs: HashMap::new(),
            sent_by: Vec::new(),
            out: Output::default(),
        }
    }

    /// The timer values in use.
    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.out.stats
    }

    /// Live client and server transactions.
    pub fn len(&self) -> usize {
        self.clients.len() + self.servers.len()
    }

    /// No live transaction.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The request server transaction `tx` answers (as reported, Via
    /// stamped).
    pub fn request(&self, tx: ServerTxId) -> Option<&Message> {
        self.servers.get(&tx.0).map(|t| &t.request)
    }

    /// Whether client transaction `tx` is still live.
    pub fn is_live(&self, tx: ClientTxId) -> bool {
        self.clients.contains_key(&tx.0)
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// When [`Transactions::handle_timeout`] must be called next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.tidy();
        while let Some(Reverse((at, timer))) = self.out.timers.peek().copied() {
            if self.is_armed(at, timer) {
                return Some(at);
            }
            self.out.timers.pop();
        }
        None
    }

    /// Gives back memory a burst left behind. A timer is disarmed by
    /// forgetting it in its transaction, not by removing it from the heap,
    /// so the heap keeps disarmed entries until they come due — the
    /// unanswered-INVITE guard of every answered INVITE for 3 minutes. When
    /// they outnumber the live transactions many times over, the heap is
    /// rebuilt from the armed ones; and the tables, which never shrink by
    /// themselves, are shrunk once a burst has passed. Each rebuild or
    /// shrink follows as many insertions as it removes, so the cost is
    /// constant per transaction.
    fn tidy(&mut self) {
        /// Below these, nothing is worth tidying: timer entries, and table
        /// slots (a server transaction takes most of a kilobyte).
        const FEW_TIMERS: usize = 256;
        const SMALL: usize = 32;
        let live = self.len();
        if self.out.timers.len() > FEW_TIMERS + 8 * live {
            let mut timers = std::mem::take(&mut self.out.timers).into_vec();
            timers.retain(|Reverse((at, timer))| self.is_armed(*at, *timer));
            self.out.timers = BinaryHeap::from(timers);
            self.out.timers.shrink_to_fit();
        }
        fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
            if map.capacity() > SMALL && map.len() < map.capacity() / 4 {
                map.shrink_to(map.len() * 2);
            }
        }
        shrink(&mut self.clients);
        shrink(&mut self.client_keys);
        shrink(&mut self.servers);
        shrink(&mut self.server_keys);
        shrink(&mut self.merges);
        shrink(&mut self.acks);
        shrink(&mut self.dialogs);
    }

    fn is_armed(&self, at: Instant, timer: TimerRef) -> bool {
        let at = Some(at);
        match timer {
            TimerRef::Client(id) => self
                .clients
                .get(&id)
                .is_some_and(|tx| tx.retransmit_at == at || tx.timeout_at == at),
            TimerRef::Server(id) => self.servers.get(&id).is_some_and(|tx| {
                tx.retransmit_at == at || tx.timeout_at == at || tx.trying_at == at
            }),
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, timer))) = self.out.timers.peek().copied() {
            if at > now {
                break;
            }
            self.out.timers.pop();
            match timer {
                TimerRef::Client(id) => self.client_timers(id, now),
                TimerRef::Server(id) => self.server_timers(id, now),
            }
        }
    }

    /// Handles a message that came in from `peer`.
    pub fn handle_message(&mut self, now: Instant, message: Message, peer: Peer) {
        if message.is_request() {
            self.handle_request(now, message, peer);
        } else {
            self.handle_response(now, message, peer);
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    // ----- client transactions (RFC 3261 §17.1, RFC 6026 §8.4) -----

    /// Sends `request` to `peer` in a new client transaction. The request
    /// carries its top Via with an RFC 3261 branch (see
    /// [`crate::new_branch`]); an ACK is sent with
    /// [`Transactions::send_ack`] instead.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Message,
        peer: Peer,
    ) -> Result<ClientTxId, Error> {
        let id = self.start_client(now, request, peer, true)?;
        Ok(ClientTxId(id))
    }

    fn start_client(
        &mut self,
        now: Instant,
        request: Message,
        peer: Peer,
        report: bool,
    ) -> Result<u64, Error> {
        let method = request.method().ok_or(Error::NotARequest)?.clone();
        if method == Method::Ack {
            return Err(Error::State("an ACK is sent with send_ack"));
        }
        if !request.via().is_some_and(|v| v.has_rfc3261_branch()) {
            return Err(Error::Missing("top Via with an RFC 3261 branch"));
        }
        let key = ClientKey {
            branch: request.share(request.branch().ok_or(Error::Missing("branch"))?),
            method,
        };
        if self.client_keys.contains_key(&key) {
            return Err(Error::DuplicateBranch);
        }
        let (request, peer) = self.fit_path_mtu(request, peer);
        let id = self.new_id();
        let timer = TimerRef::Client(id);
        let transmit = Transmit {
            peer,
            bytes: request.to_bytes(),
        };
        self.out.transmits.push_back(transmit.clone());
        let mut tx = ClientTx {
            key: key.clone(),
            request,
            transmit,
            state: ClientState::Calling,
            interval: self.timers.t1,
            retransmit_at: None,
            timeout_at: None,
            report,
            cancel: Cancel::NotAsked,
            answered: Vec::new(),
            dialogs: Vec::new(),
            in_dialog: None,
        };
        if !peer.transport.is_reliable() {
            self.out
                .arm(&mut tx.retransmit_at, now + self.timers.t1, timer);
        }
        let timeout = now + self.timers.transaction_timeout();
        self.out.arm(&mut tx.timeout_at, timeout, timer);
        self.client_keys.insert(key, id);
        self.clients.insert(id, tx);
        Ok(id)
    }

    /// RFC 3261 §18.1.1: a request over 1300 bytes, the path MTU being
    /// unknown, goes over TCP instead of UDP, its Via saying so — when we
    /// have a TCP address to put there.
    fn fit_path_mtu(&self, request: Message, peer: Peer) -> (Message, Peer) {
        const UDP_BUDGET: usize = 1300;
        // The text as received or built; written out it differs by a few
        // bytes at most (long header names for compact ones).
        let size = request.head().len() + request.body().len();
        if peer.transport != Transport::Udp || size <= UDP_BUDGET {
            return (request, peer);
        }
        let tcp = self.sent_by.iter().find(|(t, _)| *t == Transport::Tcp);
        let (Some((_, sent_by)), Some(top)) = (tcp, top_via(&request)) else {
            return (request, peer);
        };
        let params = top.find(';').map_or("", |at| &top[at..]);
        let line = request.header(HeaderName::Via).unwrap_or_default();
        let via = format!("SIP/2.0/TCP {sent_by}{params}{}", &line[top.len()..]);
        let switched = request
            .to_builder()
            .remove_first(HeaderName::Via)
            .header_first(HeaderName::Via, via)
            .build();
        match switched {
            Ok(switched) => (
                switched,
                Peer {
                    transport: Transport::Tcp,
                    connection: None,
                    ..peer
                },
            ),
            Err(_) => (request, peer),
        }
    }

    /// Sends the ACK for a 2xx answer to the INVITE of `tx` (built by the
    /// dialog, RFC 3261 §13.2.2.4) to `peer`. The layer resends it on every
    /// retransmission of that 2xx while the transaction lives.
    pub fn send_ack(&mut self, tx: ClientTxId, ack: Message, peer: Peer) -> Result<(), Error> {
        let transmit = Transmit {
            peer,
            bytes: ack.to_bytes(),
        };
        let to_tag = ack.to_tag().map(|t| ack.share(t));
        if let Some(tx) = self.clients.get_mut(&tx.0)
            && let Some(slot) = tx
                .answered
                .iter_mut()
                .find(|(tag, _)| Some(tag) == to_tag.as_ref())
        {
            slot.1 = Some(transmit.clone());
        }
        self.out.transmits.push_back(transmit);
        Ok(())
    }

    /// Sets our `host:port` for the Via of requests sent over
    /// `transport` (the address its listener is reachable at).
    pub fn set_sent_by(&mut self, transport: Transport, sent_by: impl Into<ByteString>) {
        let sent_by = sent_by.into();
        match self.sent_by.iter_mut().find(|(t, _)| *t == transport) {
            Some(slot) => slot.1 = sent_by,
            None => self.sent_by.push((transport, sent_by)),
        }
    }

    /// A top Via for a new request over `transport`, with a fresh branch
    /// (and `rport` over UDP, RFC 3581); `None` before
    /// [`Transactions::set_sent_by`] named our address there.
    pub fn via(&self, transport: Transport) -> Option<String> {
        let (_, sent_by) = self.sent_by.iter().find(|(t, _)| *t == transport)?;
        let rport = if transport == Transport::Udp {
            ";rport"
        } else {
            ""
        };
        Some(format!(
            "SIP/2.0/{transport} {sent_by};branch={}{rport}",
            new_branch()
        ))
    }

    /// A live dialog.
    pub fn dialog(&self, id: &DialogId) -> Option<&Dialog> {
        self.dialogs.get(id)
    }

    /// How many dialogs are live.
    pub fn dialog_count(&self) -> usize {
        self.dialogs.len()
    }

    /// Every live dialog, in no particular order.
    pub fn dialogs(&self) -> impl Iterator<Item = &Dialog> {
        self.dialogs.values()
    }

    /// A request in dialog `id` (RFC 3261 §12.2.1.1) with its next CSeq
    /// and a Via for its next hop; add Contact (target refreshes) and a
    /// body, build it and pass it to [`Transactions::send_in_dialog`].
    pub fn request_in_dialog(
        &mut self,
        id: &DialogId,
        method: Method,
    ) -> Result<MessageBuilder, Error> {
        let dialog = self.dialogs.get_mut(id).ok_or(Error::UnknownDialog)?;
        if dialog.ending {
            return Err(Error::State(
                "the dialog is ending: a BYE was sent or received",
            ));
        }
        let transport = dialog.next_hop().transport;
        let builder = dialog.request(method)?;
        let via = self
            .via(transport)
            .ok_or(Error::Missing("sent-by for the transport"))?;
        Ok(builder.header_first(HeaderName::Via, via))
    }

    /// The ACK for a 2xx to the INVITE with CSeq number `invite_seq` in
    /// dialog `id` (§13.2.2.4), to build (with the answer SDP if the offer
    /// was in the 2xx) and pass to [`Transactions::send_ack`] with the
    /// dialog's [`Dialog::next_hop`].
    pub fn ack_in_dialog(&self, id: &DialogId, invite_seq: u32) -> Result<MessageBuilder, Error> {
        let dialog = self.dialogs.get(id).ok_or(Error::UnknownDialog)?;
        let via = self
            .via(dialog.next_hop().transport)
            .ok_or(Error::Missing("sent-by for the transport"))?;
        Ok(dialog
            .request_with_seq(Method::Ack, invite_seq)
            .header_first(HeaderName::Via, via))
    }

    /// Sends a request built with [`Transactions::request_in_dialog`] to
    /// the dialog's next hop. A BYE ends the dialog when it completes (or
    /// fails); so does a 481 or 408 to any request (§12.2.1.2).
    pub fn send_in_dialog(
        &mut self,
        now: Instant,
        id: &DialogId,
        request: Message,
    ) -> Result<ClientTxId, Error> {
        let peer = self.dialogs.get(id).ok_or(Error::UnknownDialog)?.next_hop();
        let bye = request.method() == Some(&Method::Bye);
        let tx = self.start_client(now, request, peer, true)?;
        if bye && let Some(dialog) = self.dialogs.get_mut(id) {
            dialog.ending = true;
        }
        if let Some(client) = self.clients.get_mut(&tx) {
            client.in_dialog = Some(id.clone());
        }
        Ok(ClientTxId(tx))
    }

    /// Cancels the INVITE of `tx` (RFC 3261 §9.1): sends a CANCEL now if a
    /// provisional response has arrived, or as soon as one does. The
    /// INVITE's final response (487 normally) still comes as an event;
    /// without one in 64·T1 the transaction times out.
    pub fn cancel(&mut self, now: Instant, tx: ClientTxId) -> Result<(), Error> {
        let invite = self
            .clients
            .get_mut(&tx.0)
            .ok_or(Error::UnknownTransaction)?;
        if invite.key.method != Method::Invite {
            return Err(Error::State("only an INVITE can be cancelled"));
        }
        match (&invite.cancel, invite.state) {
            (Cancel::NotAsked, ClientState::Calling) => invite.cancel = Cancel::Pending,
            (Cancel::NotAsked, ClientState::Proceeding) => self.send_cancel(now, tx.0)?,
            _ => {}
        }
        Ok(())
    }

    fn send_cancel(&mut self, now: Instant, id: u64) -> Result<(), Error> {
        let Some(invite) = self.clients.get_mut(&id) else {
            return Ok(());
        };
        invite.cancel = Cancel::Sent;
        let timeout = now + self.timers.transaction_timeout();
        self.out
            .arm(&mut invite.timeout_at, timeout, TimerRef::Client(id));
        let cancel = build_cancel(&invite.request)?;
        let peer = invite.transmit.peer;
        self.start_client(now, cancel, peer, false)?;
        Ok(())
    }

    fn handle_response(&mut self, now: Instant, response: Message, peer: Peer) {
        let id = ClientKey::of_response(&response).and_then(|k| self.client_keys.get(&k).copied());
        let Some(id) = id else {
            self.stray(response, peer);
            return;
        };
        let Some(status) = response.status() else {
            return;
        };
        let Some(tx) = self.clients.get(&id) else {
            return;
        };
        let reported = tx.report
            && match tx.state {
                ClientState::Calling | ClientState::Proceeding => true,
                ClientState::Accepted => {
                    let tag = response.to_tag().unwrap_or_default();
                    status.is_success() && tx.answered.iter().all(|(t, _)| t != tag)
                }
                ClientState::Completed => false,
            };
        let (dialog, ended) = if reported {
            self.client_dialog(id, &response, status, peer)
        } else {
            (None, Vec::new())
        };
        self.client_response(now, id, response, status, peer, dialog);
        // After the response, so the application hears of the BYE's 200
        // before its dialog ends.
        for dialog in ended {
            self.end_dialog(&dialog);
        }
    }

    /// The client transaction state machine for a response.
    fn client_response(
        &mut self,
        now: Instant,
        id: u64,
        response: Message,
        status: StatusCode,
        peer: Peer,
        dialog: Option<DialogId>,
    ) {
        let Some(tx) = self.clients.get_mut(&id) else {
            return;
        };
        let invite = tx.key.method == Method::Invite;
        let out = &mut self.out;
        let timer = TimerRef::Client(id);
        let mut report = tx.report;
        let mut cancel_now = false;
        match tx.state {
            ClientState::Calling | ClientState::Proceeding if status.is_provisional() => {
                tx.state = ClientState::Proceeding;
                if invite {
                    tx.retransmit_at = None;
                }
                cancel_now = matches!(tx.cancel, Cancel::Pending);
            }
            ClientState::Calling | ClientState::Proceeding if invite && status.is_success() => {
                tx.state = ClientState::Accepted;
                tx.retransmit_at = None;
                let tag = response.to_tag().map(|t| response.share(t));
                tx.answered.push((tag.unwrap_or_default(), None));
                let timer_m = now + self.timers.transaction_timeout();
                out.arm(&mut tx.timeout_at, timer_m, timer);
            }
            ClientState::Calling | ClientState::Proceeding => {
                tx.state = ClientState::Completed;
                tx.retransmit_at = None;
                let linger = if invite {
                    if let Ok(ack) = build_ack(&tx.request, &response) {
                        let transmit = Transmit {
                            peer: tx.transmit.peer,
                            bytes: ack.to_bytes(),
                        };
                        out.transmits.push_back(transmit.clone());
                        tx.answered.push((ByteString::new(), Some(transmit)));
                    }
                    self.timers.timer_d(peer.transport.is_reliable())
                } else {
                    self.timers.linger(peer.transport.is_reliable())
                };
                if report {
                    out.events.push_back(Event::Response {
                        tx: ClientTxId(id),
                        response,
                        dialog,
                    });
                }
                if linger.is_zero() {
                    self.end_client(id);
                } else {
                    out.arm(&mut tx.timeout_at, now + linger, timer);
                }
                return;
            }
            ClientState::Completed => {
                // A retransmitted final response: resend the ACK.
                if invite && let Some((_, Some(ack))) = tx.answered.first() {
                    out.transmits.push_back(ack.clone());
                }
                out.stats.absorbed += 1;
                report = false;
            }
            ClientState::Accepted if status.is_success() => {
                let tag = response.to_tag().unwrap_or_default();
                match tx.answered.iter().find(|(t, _)| t == tag) {
                    Some((_, ack)) => {
                        if let Some(ack) = ack {
                            out.transmits.push_back(ack.clone());
                        }
                        out.stats.absorbed += 1;
                        report = false;
                    }
                    // Another fork answered too.
                    None => tx.answered.push((response.share(tag), None)),
                }
            }
            ClientState::Accepted => {
                out.stats.absorbed += 1;
                report = false;
            }
        }
        if report {
            out.events.push_back(Event::Response {
                tx: ClientTxId(id),
                response,
                dialog,
            });
        }
        if cancel_now {
            // Best effort: a CANCEL that cannot be built leaves the INVITE
            // to the application's own ring timeout.
            let _ = self.send_cancel(now, id);
        }
    }

    /// What a reported response does to dialogs (RFC 3261 §12.1.2,
    /// §12.2.1.2, §13.2.2.4, §15): the dialog it belongs to, and the
    /// dialogs it ends.
    fn client_dialog(
        &mut self,
        id: u64,
        response: &Message,
        status: StatusCode,
        peer: Peer,
    ) -> (Option<DialogId>, Vec<DialogId>) {
        let Some(tx) = self.clients.get_mut(&id) else {
            return (None, Vec::new());
        };
        if let Some(dialog) = tx.in_dialog.clone() {
            let ends = status.is_final()
                && (tx.key.method == Method::Bye || matches!(status.as_u16(), 408 | 481));
            if ends {
                return (Some(dialog.clone()), vec![dialog]);
            }
            if status.is_success()
                && matches!(tx.key.method, Method::Invite | Method::Update)
                && let Some(d) = self.dialogs.get_mut(&dialog)
            {
                d.refresh_target(response);
            }
            return (Some(dialog), Vec::new());
        }
        if tx.key.method != Method::Invite || status == StatusCode::TRYING {
            return (None, Vec::new());
        }
        if !status.is_provisional() && !status.is_success() {
            let dialogs = &self.dialogs;
            let early = std::mem::take(&mut tx.dialogs)
                .into_iter()
                .filter(|d| {
                    dialogs
                        .get(d)
                        .is_some_and(|d| d.state == DialogState::Early)
                })
                .collect();
            return (None, early);
        }
        let Some(dialog) = DialogId::of_response(response) else {
            return (None, Vec::new());
        };
        match self.dialogs.get_mut(&dialog) {
            Some(d) => d.update_from_response(response),
            None => {
                let Some(d) = Dialog::as_uac(&tx.request, response, peer) else {
                    return (None, Vec::new());
                };
                self.dialogs.insert(dialog.clone(), d);
                tx.dialogs.push(dialog.clone());
            }
        }
        (Some(dialog), Vec::new())
    }

    fn end_dialog(&mut self, id: &DialogId) {
        if self.dialogs.remove(id).is_some() {
            self.out
                .events
                .push_back(Event::DialogEnded { id: id.clone() });
        }
    }

    fn stray(&mut self, response: Message, peer: Peer) {
        self.out.stats.stray_responses += 1;
        let invite_2xx = response.status().is_some_and(StatusCode::is_success)
            && response.cseq().is_some_and(|c| c.method == "INVITE");
        if invite_2xx {
            self.out
                .events
                .push_back(Event::StrayResponse { response, peer });
        }
    }

    fn client_timers(&mut self, id: u64, now: Instant) {
        let Some(tx) = self.clients.get_mut(&id) else {
            return;
        };
        let out = &mut self.out;
        if tx.retransmit_at.is_some_and(|at| at <= now) {
            out.transmits.push_back(tx.transmit.clone());
            out.stats.retransmissions += 1;
            tx.interval = if tx.key.method == Method::Invite {
                tx.interval * 2 // timer A doubles without a cap
            } else if tx.state == ClientState::Proceeding {
                self.timers.t2
            } else {
                self.timers.backoff_capped(tx.interval)
            };
            out.arm(
                &mut tx.retransmit_at,
                now + tx.interval,
                TimerRef::Client(id),
            );
        }
        if tx.timeout_at.is_some_and(|at| at <= now) {
            let mut ended = Vec::new();
            if matches!(tx.state, ClientState::Calling | ClientState::Proceeding) {
                out.stats.timeouts += 1;
                if tx.report {
                    out.events.push_back(Event::Timeout { tx: ClientTxId(id) });
                }
                // A timeout is a 408: it ends the dialog the request was
                // sent in, and the early dialogs of an INVITE (§12.2.1.2).
                ended.extend(tx.in_dialog.take());
                ended.extend(tx.dialogs.drain(..).filter(|d| {
                    self.dialogs
                        .get(d)
                        .is_some_and(|d| d.state == DialogState::Early)
                }));
            }
            self.end_client(id);
            for dialog in ended {
                self.end_dialog(&dialog);
            }
        }
    }

    fn end_client(&mut self, id: u64) {
        if let Some(tx) = self.clients.remove(&id) {
            self.client_keys.remove(&tx.key);
        }
    }

    // ----- server transactions (RFC 3261 §17.2, RFC 6026 §8.5) -----

    fn handle_request(&mut self, now: Instant, request: Message, source: Peer) {
        let Some(method) = request.method().cloned() else {
            return;
        };
        if method == Method::Ack {
            self.handle_ack(now, request, source);
            return;
        }
        let Some(key) = ServerKey::of_request(&request, method.clone()) else {
            self.out.stats.unmatchable += 1;
            return;
        };
        if let Some(&id) = self.server_keys.get(&key) {
            self.retransmitted_request(id);
            return;
        }
        let peer = response_peer(&request, source);
        let request = stamp_via(request, source);
        let id = self.new_id();
        let invite = method == Method::Invite;
        let merge = MergeKey::of_request(&request);
        let merged = merge.as_ref().is_some_and(|m| self.merges.contains_key(m));
        let mut tx = ServerTx {
            key: key.clone(),
            request,
            peer,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            last_response: None,
            interval: self.timers.t1,
            retransmit_at: None,
            timeout_at: None,
            trying_at: None,
            merge: None,
            ack: None,
            dialog: None,
        };
        let timer = TimerRef::Server(id);
        if invite {
            self.out
                .arm(&mut tx.trying_at, now + self.timers.trying, timer);
            let give_up = now + self.timers.unanswered_invite;
            self.out.arm(&mut tx.timeout_at, give_up, timer);
        } else {
            // The client gives up after 64·T1 (timer F): so does a
            // transaction the application never answers.
            let give_up = now + self.timers.transaction_timeout();
            self.out.arm(&mut tx.timeout_at, give_up, timer);
        }
        if !merged && let Some(m) = merge {
            self.merges.insert(m.clone(), id);
            tx.merge = Some(m);
        }
        let request = tx.request.clone();
        self.server_keys.insert(key, id);
        self.servers.insert(id, tx);
        if merged {
            self.out.stats.merged_requests += 1;
            self.respond_locally(now, id, StatusCode::LOOP_DETECTED);
        } else if method == Method::Cancel {
            self.handle_cancel(now, id, &request);
        } else {
            self.deliver_request(now, id, request, source);
        }
    }

    /// Reports a new request, after the dialog checks of RFC 3261 §12.2.2:
    /// a request for an unknown dialog gets 481, one out of CSeq order 500.
    fn deliver_request(&mut self, now: Instant, id: u64, request: Message, source: Peer) {
        let dialog = DialogId::of_request(&request);
        if let Some(dialog) = &dialog {
            let Some(d) = self.dialogs.get_mut(dialog) else {
                self.respond_locally(now, id, StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST);
                return;
            };
            let seq = request.cseq().map_or(0, |c| c.seq);
            if !d.accept_remote_seq(seq) {
                self.respond_locally(now, id, StatusCode::SERVER_INTERNAL_ERROR);
                return;
            }
            match request.method() {
                Some(Method::Invite | Method::Update) => d.refresh_target(&request),
                Some(Method::Bye) => d.ending = true,
                _ => {}
            }
            if let Some(tx) = self.servers.get_mut(&id) {
                tx.dialog = Some(dialog.clone());
            }
        }
        self.out.events.push_back(Event::Request {
            tx: Some(ServerTxId(id)),
            request,
            peer: source,
            dialog,
        });
    }

    /// A retransmission of the request of transaction `id`: resend the last
    /// response, if any.
    fn retransmitted_request(&mut self, id: u64) {
        let Some(tx) = self.servers.get(&id) else {
            return;
        };
        self.out.stats.absorbed += 1;
        let resend = matches!(tx.state, ServerState::Proceeding | ServerState::Completed);
        if resend && let Some(bytes) = &tx.last_response {
            self.out.transmits.push_back(Transmit {
                peer: tx.peer,
                bytes: bytes.clone(),
            });
        }
    }

    /// RFC 3261 §9.2: 200 to a CANCEL that matches a transaction, 481 to
    /// one that does not; the application hears of a cancelled INVITE
    /// still waiting for its final response.
    fn handle_cancel(&mut self, now: Instant, cancel_id: u64, cancel: &Message) {
        let invite = ServerKey::of_request(cancel, Method::Invite)
            .and_then(|k| self.server_keys.get(&k).copied());
        let Some(invite) = invite else {
            self.respond_locally(
                now,
                cancel_id,
                StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST,
            );
            return;
        };
        self.respond_locally(now, cancel_id, StatusCode::OK);
        let pending = self
            .servers
            .get(&invite)
            .is_some_and(|tx| tx.state == ServerState::Proceeding);
        if pending {
            self.out.events.push_back(Event::Cancelled {
                tx: ServerTxId(invite),
            });
        }
    }

    fn handle_ack(&mut self, now: Instant, ack: Message, source: Peer) {
        let invite = ServerKey::of_request(&ack, Method::Invite)
            .and_then(|k| self.server_keys.get(&k).copied());
        if let Some(id) = invite
            && let Some(tx) = self.servers.get_mut(&id)
        {
            match tx.state {
                // The ACK for a non-2xx final: the transaction absorbs it.
                ServerState::Completed => {
                    tx.state = ServerState::Confirmed;
                    tx.retransmit_at = None;
                    let linger = self.timers.linger(tx.peer.transport.is_reliable());
                    if linger.is_zero() {
                        self.end_server(id);
                    } else {
                        self.out
                            .arm(&mut tx.timeout_at, now + linger, TimerRef::Server(id));
                    }
                    return;
                }
                ServerState::Confirmed | ServerState::Proceeding | ServerState::Trying => {
                    self.out.stats.absorbed += 1;
                    return;
                }
                // Peers that reuse the INVITE's branch for the ACK of a 2xx
                // (and RFC 2543 peers) land here: it is that ACK.
                ServerState::Accepted => {}
            }
        }
        // The ACK for a 2xx: it stops the 2xx retransmission and goes to
        // the application (it may carry the answer SDP).
        if let Some(id) = AckKey::of(&ack).and_then(|k| self.acks.remove(&k))
            && let Some(tx) = self.servers.get_mut(&id)
        {
            tx.retransmit_at = None;
            tx.ack = None;
        }
        let dialog = DialogId::of_request(&ack).filter(|d| self.dialogs.contains_key(d));
        self.out.events.push_back(Event::Request {
            tx: None,
            request: ack,
            peer: source,
            dialog,
        });
    }

    /// Sends `response` on server transaction `tx`. A 2xx to an INVITE is
    /// retransmitted until its ACK arrives (RFC 3261 §13.3.1.4); the other
    /// finals are retransmitted when the request is.
    ///
    /// Dialogs follow: a provisional response with a To tag or a 2xx to an
    /// INVITE creates one, a failure ends the early one, the final
    /// response to a BYE ends its dialog.
    pub fn respond(
        &mut self,
        now: Instant,
        tx: ServerTxId,
        response: &Message,
    ) -> Result<(), Error> {
        let status = response.status().ok_or(Error::NotAResponse)?;
        let server = self.servers.get(&tx.0).ok_or(Error::UnknownTransaction)?;
        let (request, flow, dialog) = (server.request.clone(), server.peer, server.dialog.clone());
        self.respond_tx(now, tx.0, response, status)?;
        self.server_dialog(tx.0, &request, response, status, flow, dialog);
        Ok(())
    }

    /// What a response we sent does to dialogs (RFC 3261 §12.1.1, §15.1.2).
    fn server_dialog(
        &mut self,
        id: u64,
        request: &Message,
        response: &Message,
        status: StatusCode,
        flow: Peer,
        dialog: Option<DialogId>,
    ) {
        let method = request.method();
        if request.to_tag().is_some() {
            // In a dialog: the BYE's final response ends it.
            if let Some(dialog) = dialog
                && status.is_final()
                && method == Some(&Method::Bye)
            {
                self.end_dialog(&dialog);
            }
            return;
        }
        if method != Some(&Method::Invite) || status == StatusCode::TRYING {
            return;
        }
        if !status.is_provisional() && !status.is_success() {
            if let Some(dialog) = dialog {
                self.end_dialog(&dialog);
            }
            return;
        }
        let Some(created) = Dialog::as_uas(request, response, flow) else {
            return;
        };
        let dialog_id = created.id.clone();
        match self.dialogs.get_mut(&dialog_id) {
            Some(d) => d.state = created.state,
            None => {
                self.dialogs.insert(dialog_id.clone(), created);
            }
        }
        if let Some(tx) = self.servers.get_mut(&id) {
            tx.dialog = Some(dialog_id);
        }
    }

    /// The server transaction state machine for a response the
    /// application or the layer sends.
    fn respond_tx(
        &mut self,
        now: Instant,
        id: u64,
        response: &Message,
        status: StatusCode,
    ) -> Result<(), Error> {
        let server = self.servers.get_mut(&id).ok_or(Error::UnknownTransaction)?;
        let invite = server.is_invite();
        let bytes = response.to_bytes();
        let timer = TimerRef::Server(id);
        let out = &mut self.out;
        let reliable = server.peer.transport.is_reliable();
        match server.state {
            ServerState::Trying | ServerState::Proceeding if status.is_provisional() => {
                server.state = ServerState::Proceeding;
                server.trying_at = None;
            }
            ServerState::Trying | ServerState::Proceeding if invite && status.is_success() => {
                server.state = ServerState::Accepted;
                server.trying_at = None;
                // The 2xx is retransmitted end to end over any transport:
                // a later hop may be unreliable (§13.3.1.4).
                server.interval = self.timers.t1;
                out.arm(&mut server.retransmit_at, now + self.timers.t1, timer);
                let timer_l = now + self.timers.transaction_timeout();
                out.arm(&mut server.timeout_at, timer_l, timer);
                if let Some(key) = AckKey::of(response) {
                    self.acks.insert(key.clone(), id);
                    server.ack = Some(key);
                }
            }
            ServerState::Trying | ServerState::Proceeding => {
                server.state = ServerState::Completed;
                server.trying_at = None;
                if invite {
                    if !reliable {
                        server.interval = self.timers.t1;
                        out.arm(&mut server.retransmit_at, now + self.timers.t1, timer);
                    }
                    let timer_h = now + self.timers.transaction_timeout();
                    out.arm(&mut server.timeout_at, timer_h, timer);
                } else {
                    let timer_j = self.timers.timer_j(reliable);
                    out.transmits.push_back(Transmit {
                        peer: server.peer,
                        bytes: bytes.clone(),
                    });
                    if timer_j.is_zero() {
                        self.end_server(id);
                    } else {
                        server.last_response = Some(bytes);
                        out.arm(&mut server.timeout_at, now + timer_j, timer);
                    }
                    return Ok(());
                }
            }
            // More 2xx from the application (a retransmission of its own, or
            // another answer): passed on (RFC 6026 §8.5).
            ServerState::Accepted if status.is_success() => {}
            _ => return Err(Error::State("the transaction has sent its final response")),
        }
        out.transmits.push_back(Transmit {
            peer: server.peer,
            bytes: bytes.clone(),
        });
        server.last_response = Some(bytes);
        Ok(())
    }

    /// Answers transaction `id` with a response the layer builds itself.
    fn respond_locally(&mut self, now: Instant, id: u64, status: StatusCode) {
        let Some(tx) = self.servers.get(&id) else {
            return;
        };
        let mut builder = tx.request.response_to(status);
        if status != StatusCode::TRYING {
            builder = builder.to_tag(&new_tag());
        }
        if let Ok(response) = builder.build() {
            // The transaction is fresh and the response built for it.
            let _ = self.respond(now, ServerTxId(id), &response);
        }
    }

    fn server_timers(&mut self, id: u64, now: Instant) {
        let Some(tx) = self.servers.get_mut(&id) else {
            return;
        };
        if tx.trying_at.is_some_and(|at| at <= now) {
            tx.trying_at = None;
            self.respond_locally(now, id, StatusCode::TRYING);
        }
        let Some(tx) = self.servers.get_mut(&id) else {
            return;
        };
        let out = &mut self.out;
        if tx.retransmit_at.is_some_and(|at| at <= now) {
            if let Some(bytes) = &tx.last_response {
                out.transmits.push_back(Transmit {
                    peer: tx.peer,
                    bytes: bytes.clone(),
                });
                out.stats.retransmissions += 1;
            }
            tx.interval = self.timers.backoff_capped(tx.interval);
            out.arm(
                &mut tx.retransmit_at,
                now + tx.interval,
                TimerRef::Server(id),
            );
        }
        if tx.timeout_at.is_some_and(|at| at <= now) {
            if tx.state == ServerState::Proceeding && tx.is_invite() {
                // An INVITE the application never answered.
                tx.timeout_at = None;
                self.respond_locally(now, id, StatusCode::REQUEST_TIMEOUT);
                return;
            }
            let unacknowledged = tx.ack.is_some().then(|| tx.dialog.clone()).flatten();
            if tx.ack.is_some() {
                out.events
                    .push_back(Event::AckTimeout { tx: ServerTxId(id) });
            }
            self.end_server(id);
            if let Some(dialog) = unacknowledged {
                self.hang_up(now, &dialog);
            }
        }
    }

    /// Ends a session whose 2xx was never acknowledged with a BYE
    /// (§13.3.1.4), or frees the dialog at once if no BYE can be sent.
    fn hang_up(&mut self, now: Instant, dialog: &DialogId) {
        let sent = self
            .request_in_dialog(dialog, Method::Bye)
            .and_then(|bye| bye.build().map_err(Error::Build))
            .and_then(|bye| self.send_in_dialog(now, dialog, bye));
        if sent.is_err() {
            self.end_dialog(dialog);
        }
    }

    fn end_server(&mut self, id: u64) {
        if let Some(tx) = self.servers.remove(&id) {
            self.server_keys.remove(&tx.key);
            if let Some(m) = tx.merge {
                self.merges.remove(&m);
            }
            if let Some(a) = tx.ack {
                self.acks.remove(&a);
            }
        }
    }
}

/// Where the responses to `request` go (RFC 3261 §18.2.2): over a stream
/// transport, back over the request's connection — its address being the
/// source IP at the `sent-by` port, where a new connection goes if that
/// one has closed; over UDP to the source address when the request asked
/// for `rport` (RFC 3581), else to the source IP at the `sent-by` port.
fn response_peer(request: &Message, source: Peer) -> Peer {
    let Some(via) = request.via() else {
        return source;
    };
    if !source.transport.is_reliable() && via.rport().is_some() {
        return source;
    }
    let default_port = match source.transport {
        Transport::Tls | Transport::Wss => 5061,
        _ => 5060,
    };
    Peer {
        addr: SocketAddr::new(source.addr.ip(), via.port().unwrap_or(default_port)),
        ..source
    }
}

/// Adds `received` to the top Via when the request came from another
/// address than its `sent-by` (RFC 3261 §18.2.1), and fills in `rport`
/// with `received` when the client asked for it (RFC 3581 §4), so every
/// response carries them back.
fn stamp_via(request: Message, source: Peer) -> Message {
    let Some(via) = request.via() else {
        return request;
    };
    let wants_rport = via.rport() == Some(None);
    if !wants_rport && via.host().ip() == Some(source.addr.ip()) {
        return request;
    }
    let (Some(line), Some(top)) = (request.header(HeaderName::Via), top_via(&request)) else {
        return request;
    };
    let (sent, params) = top.split_once(';').unwrap_or((top, ""));
    let mut stamped = String::with_capacity(line.len() + 48);
    stamped.push_str(sent.trim_end());
    for param in params.split(';').filter(|p| !p.trim().is_empty()) {
        let name = param.split('=').next().unwrap_or_default().trim();
        let replaced = name.eq_ignore_ascii_case("received")
            || (wants_rport && name.eq_ignore_ascii_case("rport"));
        if !replaced {
            stamped.push(';');
            stamped.push_str(param.trim());
        }
    }
    let _ = write!(stamped, ";received={}", source.addr.ip());
    if wants_rport {
        let _ = write!(stamped, ";rport={}", source.addr.port());
    }
    stamped.push_str(&line[top.len()..]);
    request
        .to_builder()
        .remove_first(HeaderName::Via)
        .header_first(HeaderName::Via, stamped)
        .build()
        .unwrap_or(request)
}

/// The headers a CANCEL or the ACK of a non-2xx copies from its INVITE
/// (RFC 3261 §9.1, §17.1.1.3): Request-URI, top Via, Route, From, Call-ID
/// and the CSeq number; To comes from `to`.
fn request_like_invite(invite: &Message, method: Method, to: &str) -> Result<Message, Error> {
    let missing = Error::Missing;
    let uri = invite.uri_str().ok_or(missing("Request-URI"))?;
    let cseq = invite.cseq().ok_or(missing("CSeq"))?;
    let mut builder = Message::request(method.clone(), invite.share(uri))
        .header(
            HeaderName::Via,
            invite.share(top_via(invite).ok_or(missing("Via"))?),
        )
        .header(HeaderName::MaxForwards, "70");
    for route in invite.header_values(HeaderName::Route) {
        builder = builder.header(HeaderName::Route, invite.share(route));
    }
    let from = invite.header(HeaderName::From).ok_or(missing("From"))?;
    let call_id = invite
        .header(HeaderName::CallId)
        .ok_or(missing("Call-ID"))?;
    builder
        .header(HeaderName::From, invite.share(from))
        .header(HeaderName::To, to.to_owned())
        .header(HeaderName::CallId, invite.share(call_id))
        .header(HeaderName::CSeq, format!("{} {}", cseq.seq, method))
        .header(HeaderName::ContentLength, "0")
        .build()
        .map_err(Error::Build)
}

fn build_cancel(invite: &Message) -> Result<Message, Error> {
    let to = invite.header(HeaderName::To).ok_or(Error::Missing("To"))?;
    request_like_invite(invite, Method::Cancel, to)
}

fn build_ack(invite: &Message, response: &Message) -> Result<Message, Error> {
    let to = response
        .header(HeaderName::To)
        .ok_or(Error::Missing("To"))?;
    request_like_invite(invite, Method::Ack, to)
}
