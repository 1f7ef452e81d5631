//! [`Endpoint`]: the transaction layer driven by tokio over real
//! transports.
//!
//! The [`Transactions`] table sits behind a mutex that is never held
//! across an `.await`. Received messages go into it on the task that read
//! them (a UDP listener's, which hands over everything its socket held at
//! once; a connection's), and the application calls `send_request`,
//! `respond` and the dialog helpers from any task, so no message waits for
//! another task to be scheduled. One task runs the timers, and is woken
//! only when a new deadline comes before the one it sleeps for.
//!
//! Everything the layer produces is flushed at the end of each step:
//! events to bounded channels and stream messages to their connections'
//! queues under the lock (their order is kept), UDP datagrams once the
//! lock is released, so a send that lets the peer's process run does not
//! hold up the other threads.

use crate::transport::{Incoming, Receive, Sender, TransportConfig, Transports};
use crate::{
    ClientTxId, Dialog, DialogId, Error, Event, Peer, ServerTxId, Stats, Timers, Transactions,
    Transmit, Transport,
};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use trunkline_sip::{Message, MessageBuilder, Method, StatusCode};

/// How an [`Endpoint`] is set up.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Listeners and transport settings.
    pub transport: TransportConfig,
    /// Transaction timers.
    pub timers: Timers,
    /// How many events wait for the application before new requests are
    /// refused with 503 (overload, RFC 3261 §21.5.4).
    pub event_queue: usize,
}

impl EndpointConfig {
    /// Default timers and queue on `transport`'s listeners.
    pub fn new(transport: TransportConfig) -> EndpointConfig {
        EndpointConfig {
            transport,
            timers: Timers::default(),
            event_queue: 1024,
        }
    }
}

/// What the endpoint tells the application, in order.
#[derive(Debug)]
pub enum EndpointEvent {
    /// A new request (or an ACK, `tx` `None`): answer it with
    /// [`Endpoint::respond`].
    Request {
        /// The transaction to answer on.
        tx: Option<ServerTxId>,
        /// The request.
        request: Message,
        /// Where it came from.
        peer: Peer,
        /// The dialog it belongs to.
        dialog: Option<DialogId>,
    },
    /// A CANCEL matched this unanswered INVITE; answer it (487).
    Cancelled(ServerTxId),
    /// The 2xx to this INVITE was never acknowledged; the endpoint sent
    /// the BYE.
    AckTimeout(ServerTxId),
    /// A dialog ended and was freed.
    DialogEnded(DialogId),
    /// A 2xx to an INVITE whose transaction is gone (a late fork).
    StrayResponse(Message, Peer),
}

/// A response, or the end of waiting for one.
#[derive(Debug)]
// Nearly every event is a response; boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum ClientEvent {
    /// A provisional or final response.
    Response {
        /// The response.
        response: Message,
        /// The dialog it created, updated or belongs to.
        dialog: Option<DialogId>,
    },
    /// No final response in time: as a 408 (RFC 3261 §8.1.3.1).
    Timeout,
}

/// A request in flight: yields its responses.
#[derive(Debug)]
pub struct ClientTransaction {
    id: ClientTxId,
    events: Arc<ClientQueue>,
}

impl Drop for ClientTransaction {
    fn drop(&mut self) {
        let mut queue = self.events.lock();
        queue.dropped = true;
        queue.events.clear();
    }
}

/// A client transaction's events on their way to its handle. A tokio
/// channel would do, but allocates room for 32 events (some 10 KB) up
/// front for each request sent, where a transaction sees two or three.
#[derive(Debug, Default)]
struct ClientQueue(Mutex<ClientQueueState>);

#[derive(Debug, Default)]
struct ClientQueueState {
    events: VecDeque<ClientEvent>,
    waker: Option<Waker>,
    /// Nothing more will come: the endpoint let go of its end.
    closed: bool,
    /// The handle is gone.
    dropped: bool,
}

impl ClientQueue {
    fn lock(&self) -> MutexGuard<'_, ClientQueueState> {
        // Every change leaves the queue consistent.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The endpoint's end of a [`ClientQueue`]; dropping it closes the queue.
#[derive(Debug)]
struct ClientSender(Arc<ClientQueue>);

impl ClientSender {
    /// Queues `event` unless the queue is full (`last` always has room)
    /// or the handle is gone; `false` if it was dropped.
    fn send(&self, event: ClientEvent, last: bool) -> bool {
        let mut queue = self.0.lock();
        if queue.dropped || (queue.events.len() >= CLIENT_QUEUE && !last) {
            return false;
        }
        queue.events.push_back(event);
        if let Some(waker) = queue.waker.take() {
            drop(queue);
            waker.wake();
        }
        true
    }

    fn is_closed(&self) -> bool {
        self.0.lock().dropped
    }
}

impl Drop for ClientSender {
    fn drop(&mut self) {
        let mut queue = self.0.lock();
        queue.closed = true;
        if let Some(waker) = queue.waker.take() {
            drop(queue);
            waker.wake();
        }
    }
}

impl ClientTransaction {
    /// The transaction, for [`Endpoint::cancel`] and [`Endpoint::send_ack`].
    pub fn id(&self) -> ClientTxId {
        self.id
    }

    /// The next response; `None` once the final one (or a timeout) was
    /// returned.
    pub async fn next(&mut self) -> Option<ClientEvent> {
        std::future::poll_fn(|cx| {
            let mut queue = self.events.lock();
            if let Some(event) = queue.events.pop_front() {
                return Poll::Ready(Some(event));
            }
            if queue.closed {
                return Poll::Ready(None);
            }
            if !queue
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                queue.waker = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Waits for the final response (or the timeout), skipping
    /// provisional ones.
    pub async fn final_response(&mut self) -> ClientEvent {
        while let Some(event) = self.next().await {
            match &event {
                ClientEvent::Response { response, .. }
                    if response.status().is_some_and(|s| s.is_provisional()) => {}
                _ => return event,
            }
        }
        ClientEvent::Timeout
    }
}

/// Provisional responses a slow reader may leave waiting before more are
/// dropped; the final one always has room (see `ClientSender::send`).
const CLIENT_QUEUE: usize = 32;

/// Timers fire up to this late, so that the many that fall due close
/// together under load (every transaction ends on one) are run in one
/// wake-up. Far below what any SIP timer needs: T1 is 500 ms.
const TIMER_SLACK: Duration = Duration::from_millis(10);

struct State {
    layer: Transactions,
    clients: HashMap<ClientTxId, ClientSender>,
    events: mpsc::Sender<EndpointEvent>,
    dropped_events: u64,
    /// The deadline the timer task sleeps for: a step that arms an earlier
    /// timer wakes it.
    sleeping_until: Instant,
}

/// The table and the timer task's signals: what the transports hold to
/// hand received messages in.
struct Core {
    state: Mutex<State>,
    /// Held while a step's UDP datagrams go out, after the table is let
    /// go: see [`Core::step`].
    sending: Mutex<()>,
    /// The next timer has moved earlier.
    wake: Notify,
    shutdown: Notify,
}

struct Shared {
    core: Arc<Core>,
    transports: Transports,
}

/// A SIP endpoint: transports, the transaction and dialog layer, and its
/// timers, on tokio. Cheap to clone; the background task ends when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Endpoint {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

/// Stops the background task when the last [`Endpoint`] clone goes.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.core.shutdown.notify_one();
        self.0.transports.shutdown();
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Binds the listeners and starts the endpoint. The receiver yields
    /// every [`EndpointEvent`].
    pub async fn bind(
        config: EndpointConfig,
    ) -> io::Result<(Endpoint, mpsc::Receiver<EndpointEvent>)> {
        let (events, receiver) = mpsc::channel(config.event_queue.max(1));
        let core = Arc::new(Core {
            state: Mutex::new(State {
                layer: Transactions::new(config.timers),
                clients: HashMap::new(),
                events,
                dropped_events: 0,
                sleeping_until: Instant::now(),
            }),
            sending: Mutex::new(()),
            wake: Notify::new(),
            shutdown: Notify::new(),
        });
        let transports = Transports::bind_direct(config.transport, core.clone()).await?;
        {
            // Our addresses go into the Vias of the requests we send; a
            // message received meanwhile needs none.
            let mut state = core.lock();
            for transport in [
                Transport::Udp,
                Transport::Tcp,
                Transport::Tls,
                Transport::Ws,
                Transport::Wss,
            ] {
                if let Some(addr) = transports.local_addr(transport) {
                    state.layer.set_sent_by(transport, addr.to_string());
                }
            }
        }
        let shared = Arc::new(Shared { core, transports });
        tokio::spawn(drive(shared.clone()));
        let owner = Arc::new(Owner(shared.clone()));
        Ok((
            Endpoint {
                shared,
                _owner: owner,
            },
            receiver,
        ))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.core.lock()
    }

    /// The address a listener of `transport` is bound to.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.shared.transports.local_addr(transport)
    }

    /// A top Via for a new request over `transport`, with a fresh branch.
    pub fn via(&self, transport: Transport) -> Option<String> {
        self.state().layer.via(transport)
    }

    /// Sends `request` (with its top Via, see [`Endpoint::via`]) to `peer`.
    pub fn send_request(&self, request: Message, peer: Peer) -> Result<ClientTransaction, Error> {
        self.shared.run(|state| {
            let id = state.layer.send_request(Instant::now(), request, peer)?;
            Ok(state.client(id))
        })
    }

    /// Answers the request of server transaction `tx`.
    pub fn respond(&self, tx: ServerTxId, response: &Message) -> Result<(), Error> {
        self.shared
            .run(|state| state.layer.respond(Instant::now(), tx, response))
    }

    /// The request server transaction `tx` answers, while it lives.
    pub fn request(&self, tx: ServerTxId) -> Option<Message> {
        self.state().layer.request(tx).cloned()
    }

    /// Cancels an INVITE (RFC 3261 §9.1).
    pub fn cancel(&self, tx: ClientTxId) -> Result<(), Error> {
        self.shared
            .run(|state| state.layer.cancel(Instant::now(), tx))
    }

    /// Sends the ACK for a 2xx to the INVITE of `tx`.
    pub fn send_ack(&self, tx: ClientTxId, ack: Message, peer: Peer) -> Result<(), Error> {
        self.shared.run(|state| state.layer.send_ack(tx, ack, peer))
    }

    /// A copy of a live dialog.
    pub fn dialog(&self, id: &DialogId) -> Option<Dialog> {
        self.state().layer.dialog(id).cloned()
    }

    /// A request in dialog `id`, with its CSeq, Route and Via.
    pub fn request_in_dialog(
        &self,
        id: &DialogId,
        method: Method,
    ) -> Result<MessageBuilder, Error> {
        self.state().layer.request_in_dialog(id, method)
    }

    /// The ACK for the 2xx to the INVITE with CSeq `invite_seq` in dialog
    /// `id`, sent to the dialog's next hop.
    pub fn ack_in_dialog(
        &self,
        tx: ClientTxId,
        id: &DialogId,
        invite_seq: u32,
    ) -> Result<(), Error> {
        self.shared.run(|state| {
            let ack = state
                .layer
                .ack_in_dialog(id, invite_seq)?
                .build()
                .map_err(Error::Build)?;
            let hop = state
                .layer
                .dialog(id)
                .ok_or(Error::UnknownDialog)?
                .next_hop();
            state.layer.send_ack(tx, ack, hop)
        })
    }

    /// Sends a request built with [`Endpoint::request_in_dialog`].
    pub fn send_in_dialog(
        &self,
        id: &DialogId,
        request: Message,
    ) -> Result<ClientTransaction, Error> {
        self.shared.run(|state| {
            let tx = state.layer.send_in_dialog(Instant::now(), id, request)?;
            Ok(state.client(tx))
        })
    }

    /// Live transactions and dialogs.
    pub fn load(&self) -> (usize, usize) {
        let state = self.state();
        (state.layer.len(), state.layer.dialog_count())
    }

    /// A copy of every live dialog (their state, tags, target, route set
    /// and CSeqs), for a listing; in no particular order.
    pub fn dialogs(&self) -> Vec<Dialog> {
        self.state().layer.dialogs().cloned().collect()
    }

    /// The transaction layer's counters.
    pub fn stats(&self) -> Stats {
        self.state().layer.stats()
    }
}

impl State {
    fn client(&mut self, id: ClientTxId) -> ClientTransaction {
        let events = Arc::new(ClientQueue::default());
        self.clients.insert(id, ClientSender(events.clone()));
        ClientTransaction { id, events }
    }
}

impl Shared {
    /// Runs `op` on the layer, then sends what it produced.
    fn run<T>(&self, op: impl FnOnce(&mut State) -> Result<T, Error>) -> Result<T, Error> {
        self.core.step(&self.transports.sender(), false, op)
    }
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the table as consistent as
        // any step of it: keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sending(&self) -> MutexGuard<'_, ()> {
        self.sending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `op` on the layer and hands on what it produced: events and
    /// stream messages under the lock, UDP datagrams after it (each
    /// `sendto` is a few µs other threads need not wait for). Wakes the
    /// timer task if `op` armed a timer before the one it sleeps for.
    ///
    /// A step of `received` messages takes the send lock before it lets
    /// the table go, so what it sends (a `100 Trying`, a response repeated
    /// for a retransmitted request) leaves before anything the application
    /// sends in answer to the requests it has just been handed: otherwise
    /// a 200 OK could overtake its INVITE's 100 Trying on the wire while
    /// the receiving thread sends the rest of a large batch.
    fn step<T>(&self, out: &Sender<'_>, received: bool, op: impl FnOnce(&mut State) -> T) -> T {
        let mut datagrams = Vec::new();
        let (result, earlier, order) = {
            let mut state = self.lock();
            let result = op(&mut state);
            state.flush(out, &mut datagrams);
            let earlier = state
                .layer
                .poll_timeout()
                .is_some_and(|next| next < state.sleeping_until);
            let order = (received && !datagrams.is_empty()).then(|| self.sending());
            (result, earlier, order)
        };
        if !datagrams.is_empty() {
            let _order = order.unwrap_or_else(|| self.sending());
            for transmit in datagrams {
                // A full socket buffer is counted by the transports; the
                // transaction's retransmissions or timeout cover the loss.
                let _ = out.send(transmit);
            }
        }
        if earlier {
            self.wake.notify_one();
        }
        result
    }
}

impl Receive for Core {
    fn receive(&self, out: &Sender<'_>, batch: &mut Vec<Incoming>) {
        self.step(out, true, |state| {
            let now = Instant::now();
            for Incoming { message, peer } in batch.drain(..) {
                state.layer.handle_message(now, message, peer);
            }
        });
    }
}

impl State {
    /// Hands every event to its receiver and every stream message to its
    /// connection; UDP datagrams are left in `datagrams`.
    fn flush(&mut self, out: &Sender<'_>, datagrams: &mut Vec<Transmit>) {
        loop {
            while let Some(transmit) = self.layer.poll_transmit() {
                if transmit.peer.transport == Transport::Udp {
                    datagrams.push(transmit);
                } else {
                    // A full or closed queue is counted by the transports;
                    // the transaction times out.
                    let _ = out.send(transmit);
                }
            }
            let Some(event) = self.layer.poll_event() else {
                return;
            };
            // Refusing an event (503) makes a transmit: loop until both
            // queues are empty.
            self.report(event);
        }
    }

    fn report(&mut self, event: Event) {
        let for_app = match event {
            Event::Request {
                tx,
                request,
                peer,
                dialog,
            } => EndpointEvent::Request {
                tx,
                request,
                peer,
                dialog,
            },
            Event::Response {
                tx,
                response,
                dialog,
            } => {
                let last = response.status().is_some_and(StatusCode::is_final)
                    && response.cseq().is_some_and(|c| c.method != "INVITE")
                    || response.status().is_some_and(|s| s.as_u16() >= 300);
                let event = ClientEvent::Response { response, dialog };
                self.pass_to_client(tx, event, last);
                return;
            }
            Event::Timeout { tx } => {
                self.pass_to_client(tx, ClientEvent::Timeout, true);
                return;
            }
            Event::Cancelled { tx } => EndpointEvent::Cancelled(tx),
            Event::AckTimeout { tx } => EndpointEvent::AckTimeout(tx),
            Event::DialogEnded { id } => EndpointEvent::DialogEnded(id),
            Event::StrayResponse { response, peer } => EndpointEvent::StrayResponse(response, peer),
        };
        if let Err(mpsc::error::TrySendError::Full(event)) = self.events.try_send(for_app) {
            self.dropped_events += 1;
            // Overloaded: a new request is refused rather than left to time
            // out (RFC 3261 §21.5.4).
            if let EndpointEvent::Request {
                tx: Some(tx),
                request,
                ..
            } = event
                && let Ok(busy) = request
                    .response_to(StatusCode::SERVICE_UNAVAILABLE)
                    .header(trunkline_sip::HeaderName::RetryAfter, "5")
                    .to_tag(&crate::new_tag())
                    .build()
            {
                let _ = self.layer.respond(Instant::now(), tx, &busy);
            }
        }
    }

    /// Passes a client transaction's event on; `last` closes its channel.
    /// A 2xx to an INVITE is not last: other forks may answer too, and the
    /// channel closes when the application drops its handle.
    fn pass_to_client(&mut self, tx: ClientTxId, event: ClientEvent, last: bool) {
        let Some(sender) = self.clients.get(&tx) else {
            return;
        };
        if !sender.send(event, last) {
            self.dropped_events += 1;
        }
        if last || sender.is_closed() {
            self.clients.remove(&tx);
        }
    }
}

/// How often the channels of ended client transactions are swept.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The background task: the timers.
async fn drive(shared: Arc<Shared>) {
    let core = &shared.core;
    let out = shared.transports.sender();
    let mut next_sweep = Instant::now() + SWEEP_EVERY;
    loop {
        let deadline = core.step(&out, false, |state| {
            let now = Instant::now();
            state.layer.handle_timeout(now);
            if now >= next_sweep {
                // An INVITE's channel outlives its 2xx (forks may answer
                // too); drop the channels of ended transactions.
                let State { layer, clients, .. } = &mut *state;
                clients.retain(|tx, sender| layer.is_live(*tx) && !sender.is_closed());
                next_sweep = now + SWEEP_EVERY;
            }
            let next = state
                .layer
                .poll_timeout()
                .map_or(next_sweep, |at| at.min(next_sweep));
            state.sleeping_until = next;
            next
        });
        tokio::select! {
            () = tokio::time::sleep_until((deadline + TIMER_SLACK).into()) => {}
            () = core.wake.notified() => {}
            () = core.shutdown.notified() => return,
        }
    }
}
