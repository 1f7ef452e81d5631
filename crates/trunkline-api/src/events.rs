//! The live events of `GET /api/v1/events`: calls, registrations and
//! extension states, each numbered, the latest kept for clients that
//! reconnect.
//!
//! An [`EventHub`] numbers every event it is given (`seq`, from 1, one
//! more each time), writes its JSON once, keeps the last `retention` of
//! them and hands each to every [`Subscription`]:
//!
//! ```text
//! {"seq":42,"time":"2025-03-14T09:26:53.589Z","type":"call","event":"ringing","call_id":"a84b…"}
//! {"seq":43,"time":"…","type":"registration","event":"registered","timestamp":1741944413,"location":{…}}
//! {"seq":44,"time":"…","type":"extension","extension":"1002","state":"ringing"}
//! ```
//!
//! A call event carries the engine's [`CallEvent`] as it serializes,
//! so new kinds of call event pass through unchanged; a registration
//! event the registrar's [`RegistrationEvent`]; an extension event an
//! extension whose [`ExtensionState`] changed, derived from the other
//! two. A subscription that starts `since` a number first gets what
//! followed it from the retained events, with a `gap` event first when
//! some are no longer kept, then the live ones; one that falls more than
//! the queue behind gets a `lag` event saying how many it missed and from
//! where to fetch them again. Gaps and lags are about one client's
//! stream, not events of the PBX: they have no `seq`.

mod extensions;
pub(crate) mod socket;

pub use extensions::ExtensionState;

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use trunkline_cdr::Timestamp;
use trunkline_engine::CallEvent;
use trunkline_registrar::RegistrationEvent;

/// The events kept for clients that reconnect, by default.
pub const DEFAULT_RETENTION: usize = 10_000;

/// How many live events a client may fall behind before it is told it
/// lagged, by default.
pub const DEFAULT_QUEUE: usize = 1024;

/// The `type` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something happened to a call.
    Call,
    /// A phone registered, unregistered or lapsed.
    Registration,
    /// An extension's state changed.
    Extension,
    /// Events a client asked for are no longer kept.
    Gap,
    /// A client fell behind; or the hub itself did, behind the engine or
    /// the registrar (with a `source`).
    Lag,
}

impl EventType {
    /// The name in events and in `?types=`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Call => "call",
            EventType::Registration => "registration",
            EventType::Extension => "extension",
            EventType::Gap => "gap",
            EventType::Lag => "lag",
        }
    }

    /// The type named `name`.
    pub fn from_name(name: &str) -> Option<EventType> {
        [
            EventType::Call,
            EventType::Registration,
            EventType::Extension,
            EventType::Gap,
            EventType::Lag,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// One numbered event, its JSON written once for every client.
#[derive(Debug, Clone)]
pub struct Event {
    seq: u64,
    kind: EventType,
    json: Utf8Bytes,
}

impl Event {
    /// Its sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Its type.
    pub fn kind(&self) -> EventType {
        self.kind
    }

    /// Its JSON.
    pub fn json(&self) -> &str {
        self.json.as_str()
    }
}

/// The fields every event starts with, then its own.
#[derive(Serialize)]
struct Envelope<P> {
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    time: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    payload: P,
}

/// The JSON of an event of `kind` with `payload`'s fields, now.
fn render<P: Serialize>(seq: Option<u64>, kind: EventType, payload: P) -> Utf8Bytes {
    let time = Timestamp::from(SystemTime::now()).to_string();
    let envelope = Envelope {
        seq,
        time,
        kind: kind.as_str(),
        payload,
    };
    match serde_json::to_string(&envelope) {
        Ok(json) => json.into(),
        // Only a payload that is not a JSON object could fail here.
        Err(e) => {
            tracing::error!(kind = kind.as_str(), "an event did not serialize: {e}");
            let envelope = Envelope {
                seq: envelope.seq,
                time: envelope.time,
                kind: envelope.kind,
                payload: serde_json::Map::new(),
            };
            serde_json::to_string(&envelope).unwrap_or_default().into()
        }
    }
}

#[derive(Serialize)]
struct ExtensionPayload<'a> {
    extension: &'a str,
    state: ExtensionState,
}

#[derive(Serialize)]
struct Missed {
    source: &'static str,
    missed: u64,
}

/// What is numbered and kept, under one lock so that the order of the
/// numbers, of the retained events and of the live ones is the same.
#[derive(Debug)]
struct Hub {
    /// The next event's number.
    next: u64,
    retained: VecDeque<Event>,
    extensions: extensions::Extensions,
}

#[derive(Debug)]
struct Inner {
    retention: usize,
    hub: Mutex<Hub>,
    live: broadcast::Sender<Event>,
    /// `true` once the hub closes; every connection holds a receiver, so
    /// its `closed()` says when the last one has ended.
    closing: watch::Sender<bool>,
}

/// Numbers, keeps and hands out the events. Cheap to clone: the clones
/// share everything.
#[derive(Debug, Clone)]
pub struct EventHub {
    inner: Arc<Inner>,
}

impl Default for EventHub {
    fn default() -> EventHub {
        EventHub::new(DEFAULT_RETENTION)
    }
}

impl EventHub {
    /// A hub that keeps the last `retention` events (0 keeps none), with
    /// the default queue.
    pub fn new(retention: usize) -> EventHub {
        EventHub::with_queue(retention, DEFAULT_QUEUE)
    }

    /// A hub that keeps the last `retention` events and lets a client
    /// fall `queue` live events behind (at least 1) before it lags.
    pub fn with_queue(retention: usize, queue: usize) -> EventHub {
        let (live, _) = broadcast::channel(queue.max(1));
        let (closing, _) = watch::channel(false);
        EventHub {
            inner: Arc::new(Inner {
                retention,
                hub: Mutex::new(Hub {
                    next: 1,
                    retained: VecDeque::with_capacity(retention.min(1024)),
                    extensions: extensions::Extensions::default(),
                }),
                live,
                closing,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Hub> {
        self.inner.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `numbers` extensions, `unavailable` until they register
    /// (one already known keeps its state). A user that registers becomes
    /// an extension without this.
    pub fn add_extensions(&self, numbers: impl IntoIterator<Item = String>) {
        self.lock().extensions.add(numbers);
    }

    /// Each extension's state, by number.
    pub fn extension_states(&self) -> Vec<(String, ExtensionState)> {
        self.lock().extensions.all()
    }

    /// The number of the last event; 0 before the first.
    pub fn last_seq(&self) -> u64 {
        self.lock().next - 1
    }

    /// Numbers, keeps and sends one event.
    fn push<P: Serialize>(&self, hub: &mut Hub, kind: EventType, payload: P) {
        let seq = hub.next;
        hub.next += 1;
        let event = Event {
            seq,
            kind,
            json: render(Some(seq), kind, payload),
        };
        if self.inner.retention > 0 {
            if hub.retained.len() >= self.inner.retention {
                hub.retained.pop_front();
            }
            hub.retained.push_back(event.clone());
        }
        // No client connected is fine.
        let _ = self.inner.live.send(event);
    }

    fn push_extensions(&self, hub: &mut Hub, changes: Vec<(String, ExtensionState)>) {
        for (extension, state) in changes {
            let payload = ExtensionPayload {
                extension: &extension,
                state,
            };
            self.push(hub, EventType::Extension, payload);
        }
    }

    /// Publishes a call event, then the extension states it changed.
    pub fn publish_call(&self, event: &CallEvent) {
        let mut hub = self.lock();
        self.push(&mut hub, EventType::Call, event);
        let changes = hub.extensions.call(event);
        self.push_extensions(&mut hub, changes);
    }

    /// Publishes a registration event, then the extension state it
    /// changed.
    pub fn publish_registration(&self, event: &RegistrationEvent) {
        let mut hub = self.lock();
        self.push(&mut hub, EventType::Registration, event);
        let changes = hub.extensions.registration(event);
        self.push_extensions(&mut hub, changes);
    }

    /// Publishes that `missed` events of `source` never reached the hub
    /// (it fell behind the engine or the registrar): a `lag` event with a
    /// `source`, which no reconnection can make up for.
    fn publish_missed(&self, source: EventType, missed: u64) {
        tracing::warn!(
            source = source.as_str(),
            missed,
            "events left out of /api/v1/events"
        );
        let mut hub = self.lock();
        let payload = Missed {
            source: source.as_str(),
            missed,
        };
        self.push(&mut hub, EventType::Lag, payload);
    }

    /// Publishes every call and registration event from the receivers on
    /// a task, until both close. Subscribe before the engine runs, so
    /// that its first events are not missed.
    pub fn follow(
        &self,
        mut calls: broadcast::Receiver<CallEvent>,
        mut registrations: broadcast::Receiver<RegistrationEvent>,
    ) -> JoinHandle<()> {
        let hub = self.clone();
        tokio::spawn(async move {
            let (mut calls_open, mut registrations_open) = (true, true);
            while calls_open || registrations_open {
                tokio::select! {
                    call = calls.recv(), if calls_open => match call {
                        Ok(event) => hub.publish_call(&event),
                        Err(RecvError::Lagged(missed)) => hub.publish_missed(EventType::Call, missed),
                        Err(RecvError::Closed) => calls_open = false,
                    },
                    registration = registrations.recv(), if registrations_open => match registration {
                        Ok(event) => hub.publish_registration(&event),
                        Err(RecvError::Lagged(missed)) => {
                            hub.publish_missed(EventType::Registration, missed)
                        }
                        Err(RecvError::Closed) => registrations_open = false,
                    },
                }
            }
        })
    }

    /// The events after `since` (all those kept when it is 0), then the
    /// live ones; without `since`, the live ones from now. A `since`
    /// beyond the last event is from before a restart (numbers start
    /// again at 1): it gets every event kept.
    pub fn subscribe(&self, since: Option<u64>) -> Subscription {
        let hub = self.lock();
        // Under the lock: every event is either kept already or to come
        // on `live`, never both, never neither.
        let live = self.inner.live.subscribe();
        let last = hub.next - 1;
        let Some(since) = since else {
            return Subscription::new(None, VecDeque::new(), live, last);
        };
        let since = if since > last { 0 } else { since };
        let first = hub.retained.front().map_or(hub.next, Event::seq);
        let gap = (since + 1 < first).then(|| (since + 1, first - 1));
        let skip = usize::try_from((since + 1).saturating_sub(first)).unwrap_or(usize::MAX);
        let backlog = hub.retained.iter().skip(skip).cloned().collect();
        let last = since.max(first - 1);
        Subscription::new(gap, backlog, live, last)
    }

    /// A receiver that sees `true` once the hub closes.
    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    /// Closes every connection (WebSocket close `1001 going away`) and
    /// refuses new ones; waits up to `within` for them to end. Whether
    /// they all did.
    pub async fn close(&self, within: Duration) -> bool {
        self.inner.closing.send_replace(true);
        tokio::time::timeout(within, self.inner.closing.closed())
            .await
            .is_ok()
    }
}

/// What a subscription delivers next.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// An event.
    Event(Event),
    /// The events `from..=to` are no longer kept.
    Gap {
        /// The first event missing.
        from: u64,
        /// The last event missing.
        to: u64,
    },
    /// The client fell behind and missed `missed` events after
    /// `resume_since`: reconnecting with `?since={resume_since}` fetches
    /// them while they are kept.
    Lag {
        /// How many.
        missed: u64,
        /// The last event delivered before them (or filtered out).
        resume_since: u64,
    },
}

#[derive(Serialize)]
struct GapPayload {
    from: u64,
    to: u64,
}

#[derive(Serialize)]
struct LagPayload {
    missed: u64,
    resume_since: u64,
}

impl Delivery {
    /// Its JSON.
    pub fn json(&self) -> Utf8Bytes {
        match self {
            Delivery::Event(event) => event.json.clone(),
            Delivery::Gap { from, to } => render(
                None,
                EventType::Gap,
                GapPayload {
                    from: *from,
                    to: *to,
                },
            ),
            Delivery::Lag {
                missed,
                resume_since,
            } => render(
                None,
                EventType::Lag,
                LagPayload {
                    missed: *missed,
                    resume_since: *resume_since,
                },
            ),
        }
    }
}

/// What one event from the backlog or the queue makes.
enum Next {
    Deliver(Delivery),
    Skip,
    End,
}

/// One client's stream: what it missed, then the live events.
#[derive(Debug)]
pub struct Subscription {
    gap: Option<(u64, u64)>,
    backlog: VecDeque<Event>,
    live: broadcast::Receiver<Event>,
    /// The last event delivered or filtered out.
    last: u64,
    /// The types delivered; `None` for all. Gaps and lags always are.
    types: Option<Vec<EventType>>,
}

impl Subscription {
    fn new(
        gap: Option<(u64, u64)>,
        backlog: VecDeque<Event>,
        live: broadcast::Receiver<Event>,
        last: u64,
    ) -> Subscription {
        Subscription {
            gap,
            backlog,
            live,
            last,
            types: None,
        }
    }

    /// Delivers only events of `types` (and gaps and lags).
    pub fn only(mut self, types: Vec<EventType>) -> Subscription {
        self.types = Some(types);
        self
    }

    /// The next delivery; `None` once the hub is gone. Cancel-safe.
    pub async fn next(&mut self) -> Option<Delivery> {
        if let Some((from, to)) = self.gap.take() {
            return Some(Delivery::Gap { from, to });
        }
        loop {
            let received = match self.backlog.pop_front() {
                Some(event) => Ok(event),
                None => self.live.recv().await,
            };
            match self.take(received) {
                Next::Deliver(delivery) => return Some(delivery),
                Next::Skip => {}
                Next::End => return None,
            }
        }
    }

    /// The next delivery if one is waiting.
    pub fn try_next(&mut self) -> Option<Delivery> {
        if let Some((from, to)) = self.gap.take() {
            return Some(Delivery::Gap { from, to });
        }
        loop {
            let received = match self.backlog.pop_front() {
                Some(event) => Ok(event),
                None => match self.live.try_recv() {
                    Ok(event) => Ok(event),
                    Err(TryRecvError::Empty) => return None,
                    Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
                    Err(TryRecvError::Closed) => Err(RecvError::Closed),
                },
            };
            match self.take(received) {
                Next::Deliver(delivery) => return Some(delivery),
                Next::Skip => {}
                Next::End => return None,
            }
        }
    }

    /// What an event taken from the backlog or the queue makes.
    fn take(&mut self, received: Result<Event, RecvError>) -> Next {
        match received {
            Ok(event) => {
                self.last = event.seq;
                if self.types.as_ref().is_none_or(|t| t.contains(&event.kind)) {
                    Next::Deliver(Delivery::Event(event))
                } else {
                    Next::Skip
                }
            }
            Err(RecvError::Lagged(missed)) => Next::Deliver(Delivery::Lag {
                missed,
                resume_since: self.last,
            }),
            Err(RecvError::Closed) => Next::End,
        }
    }

    /// How many deliveries are waiting, at most (filtered-out events
    /// count).
    pub fn waiting(&self) -> usize {
        usize::from(self.gap.is_some()) + self.backlog.len() + self.live.len()
    }

    /// The last event delivered or filtered out.
    pub fn last_seq(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::Value;
    use trunkline_registrar::{EventKind, Location};

    fn ringing(call_id: &str) -> CallEvent {
        CallEvent::Ringing {
            call_id: call_id.into(),
        }
    }

    fn registered(aor: &str) -> RegistrationEvent {
        RegistrationEvent {
            event: EventKind::Registered,
            timestamp: 1_741_944_413,
            location: Location {
                aor: aor.into(),
                destination: "127.0.0.1:5070".into(),
                transport: "UDP".into(),
                user_agent: Some("SIPp".into()),
                expires: 3600,
            },
        }
    }

    /// The next delivery, which must come at once.
    async fn next(subscription: &mut Subscription) -> Delivery {
        tokio::time::timeout(Duration::from_secs(5), subscription.next())
            .await
            .unwrap()
            .unwrap()
    }

    async fn next_json(subscription: &mut Subscription) -> Value {
        serde_json::from_str(&next(subscription).await.json()).unwrap()
    }

    /// Nothing more is delivered for a moment.
    async fn nothing_more(subscription: &mut Subscription) {
        let more = tokio::time::timeout(Duration::from_millis(50), subscription.next()).await;
        assert!(more.is_err(), "{more:?}");
    }

    #[tokio::test]
    async fn events_are_numbered_from_one_and_carry_their_payload() {
        let hub = EventHub::new(10);
        assert_eq!(hub.last_seq(), 0);
        let mut all = hub.subscribe(None);
        hub.publish_call(&CallEvent::New {
            call_id: "c1".into(),
            caller: "1001".into(),
            callee: "1002".into(),
        });
        hub.publish_registration(&registered("sip:1003@pbx"));
        let text = next(&mut all).await.json();
        assert!(
            text.starts_with(r#"{"seq":1,"time":""#),
            "fields in order: {text}"
        );
        let call: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(call["type"], "call");
        assert_eq!(call["event"], "new");
        assert_eq!(
            (call["caller"].as_str(), call["callee"].as_str()),
            (Some("1001"), Some("1002"))
        );
        let time = call["time"].as_str().unwrap();
        assert!(
            time.parse::<Timestamp>().is_ok() && time.ends_with('Z'),
            "{time}"
        );
        // The caller is no extension (none configured, none registered).
        let registration = next_json(&mut all).await;
        assert_eq!(registration["seq"], 2);
        assert_eq!(registration["type"], "registration");
        assert_eq!(registration["event"], "registered");
        assert_eq!(registration["timestamp"], 1_741_944_413);
        assert_eq!(registration["location"]["aor"], "sip:1003@pbx");
        assert_eq!(registration["location"]["user_agent"], "SIPp");
        let extension = next_json(&mut all).await;
        assert_eq!(
            (extension["seq"].as_u64(), extension["type"].as_str()),
            (Some(3), Some("extension"))
        );
        assert_eq!(extension["extension"], "1003");
        assert_eq!(extension["state"], "idle");
        assert_eq!(hub.last_seq(), 3);
        nothing_more(&mut all).await;
    }

    #[tokio::test]
    async fn extension_states_follow_configured_extensions_calls() {
        let hub = EventHub::new(100);
        hub.add_extensions(["1001".to_owned(), "1002".to_owned()]);
        let mut all = hub.subscribe(None);
        hub.publish_registration(&registered("sip:1002@pbx"));
        hub.publish_call(&CallEvent::New {
            call_id: "c1".into(),
            caller: "1001".into(),
            callee: "1002".into(),
        });
        hub.publish_call(&ringing("c1"));
        let mut seen = Vec::new();
        for _ in 0..6 {
            let event = next_json(&mut all).await;
            let what = match event["type"].as_str().unwrap() {
                "extension" => format!(
                    "{}={}",
                    event["extension"].as_str().unwrap(),
                    event["state"].as_str().unwrap()
                ),
                kind => format!("{kind}:{}", event["event"].as_str().unwrap()),
            };
            seen.push(what);
        }
        assert_eq!(
            seen,
            [
                "registration:registered",
                "1002=idle",
                "call:new",
                "1001=in_use",
                "call:ringing",
                "1002=ringing"
            ]
        );
        nothing_more(&mut all).await;
        assert_eq!(
            hub.extension_states(),
            [
                ("1001".to_owned(), ExtensionState::InUse),
                ("1002".to_owned(), ExtensionState::Ringing)
            ]
        );
    }

    #[tokio::test]
    async fn since_replays_what_followed_then_goes_live() {
        let hub = EventHub::new(10);
        for i in 0..5 {
            hub.publish_call(&ringing(&format!("c{i}")));
        }
        let mut late = hub.subscribe(Some(3));
        hub.publish_call(&ringing("c5"));
        let seqs: Vec<u64> = [
            next(&mut late).await,
            next(&mut late).await,
            next(&mut late).await,
        ]
        .iter()
        .map(|d| match d {
            Delivery::Event(e) => e.seq(),
            other => panic!("{other:?}"),
        })
        .collect();
        assert_eq!(seqs, [4, 5, 6]);
        nothing_more(&mut late).await;
        // Since the last one: nothing until the next.
        let mut current = hub.subscribe(Some(6));
        nothing_more(&mut current).await;
        // Since 0: everything kept.
        let mut all = hub.subscribe(Some(0));
        assert_eq!(next_json(&mut all).await["seq"], 1);
    }

    #[tokio::test]
    async fn since_beyond_the_window_gets_a_gap_first() {
        let hub = EventHub::new(3);
        for i in 0..10 {
            hub.publish_call(&ringing(&format!("c{i}")));
        }
        // 8, 9 and 10 are kept.
        let mut old = hub.subscribe(Some(2));
        let gap = next_json(&mut old).await;
        assert_eq!(gap["type"], "gap");
        assert_eq!(
            (gap["from"].as_u64(), gap["to"].as_u64()),
            (Some(3), Some(7))
        );
        assert!(gap.get("seq").is_none(), "{gap}");
        assert!(gap["time"].is_string(), "{gap}");
        for seq in 8..=10 {
            assert_eq!(next_json(&mut old).await["seq"], seq);
        }
        nothing_more(&mut old).await;
        // Just inside the window: no gap.
        let mut inside = hub.subscribe(Some(7));
        assert_eq!(next_json(&mut inside).await["seq"], 8);
        // Nothing kept at all: a gap up to the last event.
        let none = EventHub::new(0);
        none.publish_call(&ringing("c"));
        none.publish_call(&ringing("d"));
        let mut s = none.subscribe(Some(0));
        let gap = next_json(&mut s).await;
        assert_eq!(
            (gap["from"].as_u64(), gap["to"].as_u64()),
            (Some(1), Some(2))
        );
        nothing_more(&mut s).await;
    }

    #[tokio::test]
    async fn since_from_before_a_restart_replays_the_new_numbers() {
        let hub = EventHub::new(10);
        hub.publish_call(&ringing("a"));
        hub.publish_call(&ringing("b"));
        let mut s = hub.subscribe(Some(5000));
        assert_eq!(next_json(&mut s).await["seq"], 1);
        assert_eq!(next_json(&mut s).await["seq"], 2);
        nothing_more(&mut s).await;
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_what_it_missed_and_can_fetch_it() {
        let hub = EventHub::with_queue(100, 4);
        let mut slow = hub.subscribe(None);
        hub.publish_call(&ringing("c0"));
        assert_eq!(next_json(&mut slow).await["seq"], 1);
        for i in 1..=10 {
            hub.publish_call(&ringing(&format!("c{i}")));
        }
        // 2..=11 were sent; the queue holds the last 4.
        match next(&mut slow).await {
            Delivery::Lag {
                missed,
                resume_since,
            } => assert_eq!((missed, resume_since), (6, 1)),
            other => panic!("{other:?}"),
        }
        let lag: Value = serde_json::from_str(
            &Delivery::Lag {
                missed: 6,
                resume_since: 1,
            }
            .json(),
        )
        .unwrap();
        assert_eq!(lag["type"], "lag");
        assert_eq!(
            (lag["missed"].as_u64(), lag["resume_since"].as_u64()),
            (Some(6), Some(1))
        );
        for seq in 8..=11 {
            assert_eq!(next_json(&mut slow).await["seq"], seq);
        }
        // What it missed is still kept.
        let mut again = hub.subscribe(Some(1));
        for seq in 2..=11 {
            assert_eq!(next_json(&mut again).await["seq"], seq);
        }
    }

    #[tokio::test]
    async fn a_replay_that_outruns_the_queue_lags_from_its_last_event() {
        let hub = EventHub::with_queue(100, 2);
        for i in 0..3 {
            hub.publish_call(&ringing(&format!("c{i}")));
        }
        let mut s = hub.subscribe(Some(0));
        for i in 3..8 {
            hub.publish_call(&ringing(&format!("c{i}")));
        }
        for seq in 1..=3 {
            assert_eq!(next_json(&mut s).await["seq"], seq);
        }
        // 4..=8 came live; the queue kept 7 and 8.
        match next(&mut s).await {
            Delivery::Lag {
                missed,
                resume_since,
            } => assert_eq!((missed, resume_since), (3, 3)),
            other => panic!("{other:?}"),
        }
        assert_eq!(next_json(&mut s).await["seq"], 7);
    }

    #[tokio::test]
    async fn what_is_waiting_can_be_taken_without_waiting() {
        let hub = EventHub::with_queue(3, 2);
        for i in 0..5 {
            hub.publish_call(&ringing(&format!("c{i}")));
        }
        let mut s = hub.subscribe(Some(1));
        hub.publish_call(&ringing("c5"));
        hub.publish_call(&ringing("c6"));
        hub.publish_call(&ringing("c7"));
        // A gap (2), 3 to 5 kept, and 6 to 8 sent live, of which the
        // queue kept 7 and 8 (6 becomes a lag).
        assert_eq!(s.waiting(), 1 + 3 + 3);
        let mut taken = Vec::new();
        while let Some(delivery) = s.try_next() {
            taken.push(match delivery {
                Delivery::Event(e) => format!("{}", e.seq()),
                Delivery::Gap { from, to } => format!("gap {from}-{to}"),
                Delivery::Lag {
                    missed,
                    resume_since,
                } => format!("lag {missed} after {resume_since}"),
            });
        }
        assert_eq!(taken, ["gap 2-2", "3", "4", "5", "lag 1 after 5", "7", "8"]);
        assert_eq!(s.waiting(), 0);
        drop(hub);
        assert!(s.try_next().is_none());
        assert!(s.next().await.is_none(), "the hub is gone");
    }

    #[tokio::test]
    async fn a_type_filter_keeps_counting_what_it_leaves_out() {
        let hub = EventHub::with_queue(100, 4);
        let mut extensions = hub.subscribe(Some(0)).only(vec![EventType::Extension]);
        hub.publish_call(&ringing("c0"));
        hub.publish_registration(&registered("sip:1001@pbx"));
        let event = next_json(&mut extensions).await;
        assert_eq!(
            (event["seq"].as_u64(), event["type"].as_str()),
            (Some(3), Some("extension"))
        );
        assert_eq!(extensions.last_seq(), 3);
        for i in 0..5 {
            hub.publish_call(&ringing(&format!("c{i}")));
        }
        // Lags are delivered whatever the filter.
        assert!(matches!(
            next(&mut extensions).await,
            Delivery::Lag {
                missed: 1,
                resume_since: 3
            }
        ));
        nothing_more(&mut extensions).await;
        assert_eq!(extensions.last_seq(), 8);
    }

    #[tokio::test]
    async fn the_hub_falling_behind_its_sources_is_an_event_too() {
        let hub = EventHub::new(10);
        let (calls, calls_rx) = broadcast::channel(2);
        let (registrations, registrations_rx) = broadcast::channel::<RegistrationEvent>(2);
        let mut s = hub.subscribe(Some(0));
        // Sent before the task runs: two of the five are left.
        for i in 0..5 {
            calls.send(ringing(&format!("c{i}"))).unwrap();
        }
        let task = hub.follow(calls_rx, registrations_rx);
        let lag = next_json(&mut s).await;
        assert_eq!(lag["type"], "lag");
        assert_eq!(lag["seq"], 1);
        assert_eq!(
            (lag["source"].as_str(), lag["missed"].as_u64()),
            (Some("call"), Some(3))
        );
        assert_eq!(next_json(&mut s).await["call_id"], "c3");
        assert_eq!(next_json(&mut s).await["call_id"], "c4");
        registrations.send(registered("sip:1001@pbx")).unwrap();
        assert_eq!(next_json(&mut s).await["type"], "registration");
        // The task ends once both sources have.
        drop((calls, registrations));
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn closing_waits_for_the_connections_to_let_go() {
        let hub = EventHub::new(10);
        assert!(
            hub.close(Duration::from_millis(10)).await,
            "none to wait for"
        );
        let mut closing = hub.closing();
        assert!(*closing.borrow_and_update());
        let other = hub.clone();
        let waiting = tokio::spawn(async move { other.close(Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        drop(closing);
        assert!(waiting.await.unwrap());
        // One that never lets go is given up on.
        let _held = hub.closing();
        assert!(!hub.close(Duration::from_millis(20)).await);
    }

    #[test]
    fn type_names_read_back() {
        for kind in [
            EventType::Call,
            EventType::Registration,
            EventType::Extension,
            EventType::Gap,
            EventType::Lag,
        ] {
            assert_eq!(EventType::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(EventType::from_name("calls"), None);
    }
}
