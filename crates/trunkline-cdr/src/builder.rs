//! The record of a call in progress, which the call engine fills in as the
//! call goes and turns into a [`Cdr`] when it ends.

use crate::model::{Cdr, CdrId, Direction, Disposition, Hangup, HangupCause, Party, SipFlowEntry};
use crate::timestamp::Timestamp;
use std::time::SystemTime;

/// The most SIP messages one record keeps. A call sees a dozen or two; the
/// cap bounds the memory and the row of a call whose peer sends without
/// end (in-dialog INFO or OPTIONS loops). Messages past it are counted in
/// [`Cdr::sip_flow_omitted`].
pub const SIP_FLOW_LIMIT: usize = 1000;

/// What is known when a call's INVITE arrives.
#[derive(Debug, Clone)]
pub struct CallStart {
    /// The record's identifier ([`CdrId::generate`] makes one).
    pub id: CdrId,
    /// The SIP Call-ID of the caller's leg.
    pub call_id: String,
    /// Who calls.
    pub caller: Party,
    /// Who is called, as dialled.
    pub callee: Party,
    /// Where the call comes from (`extension/1001`, `trunk/carrier-a`).
    pub source_channel: String,
    /// Which way it goes, as far as is known before routing
    /// ([`CdrBuilder::routed`] can change it).
    pub direction: Direction,
    /// When the INVITE arrived.
    pub time: SystemTime,
}

/// A call's record while the call runs.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use trunkline_cdr::*;
///
/// let start = SystemTime::now();
/// let mut call = CdrBuilder::new(CallStart {
///     id: CdrId::generate(),
///     call_id: "a84b4c76e66710@pc33.example.com".into(),
///     caller: Party::new("1001", Some("Alice")),
///     callee: Party::new("1002", None),
///     source_channel: "extension/1001".into(),
///     direction: Direction::Internal,
///     time: start,
/// });
/// call.routed("extension/1002", Direction::Internal);
/// call.ringing(start + Duration::from_millis(300));
/// let cdr = call.end(
///     start + Duration::from_secs(30),
///     Hangup { cause: HangupCause::RingTimeout, sip_status: Some(480), reason: None, by: Side::Pbx },
/// );
/// assert_eq!(cdr.disposition, Disposition::NoAnswer);
/// assert_eq!((cdr.duration, cdr.billsec), (30, 0));
/// ```
#[derive(Debug, Clone)]
pub struct CdrBuilder {
    id: CdrId,
    call_id: String,
    caller: Party,
    callee: Party,
    source_channel: String,
    destination_channel: Option<String>,
    direction: Direction,
    start_time: Timestamp,
    ring_time: Option<Timestamp>,
    answer_time: Option<Timestamp>,
    recording: Option<String>,
    sip_flow: Vec<SipFlowEntry>,
    sip_flow_omitted: u64,
}

impl CdrBuilder {
    /// The record of a call that has just arrived.
    pub fn new(start: CallStart) -> CdrBuilder {
        CdrBuilder {
            id: start.id,
            call_id: start.call_id,
            caller: start.caller,
            callee: start.callee,
            source_channel: start.source_channel,
            destination_channel: None,
            direction: start.direction,
            start_time: start.time.into(),
            ring_time: None,
            answer_time: None,
            recording: None,
            sip_flow: Vec::new(),
            sip_flow_omitted: 0,
        }
    }

    /// The record's identifier.
    pub fn id(&self) -> &CdrId {
        &self.id
    }

    /// Routing chose `destination_channel`, and with it the direction. A
    /// later route (a forward, a failover) replaces both.
    pub fn routed(&mut self, destination_channel: impl Into<String>, direction: Direction) {
        self.destination_channel = Some(destination_channel.into());
        self.direction = direction;
    }

    /// A 180 or 183 reached the caller. Only the first counts: ringing
    /// again after a fork or a forward does not move the ring time.
    pub fn ringing(&mut self, at: SystemTime) {
        self.ring_time.get_or_insert(at.into());
    }

    /// A 2xx answered the INVITE. Only the first counts.
    pub fn answered(&mut self, at: SystemTime) {
        self.answer_time.get_or_insert(at.into());
    }

    /// The call is being recorded to `reference` (a path or object key).
    pub fn recording(&mut self, reference: impl Into<String>) {
        self.recording = Some(reference.into());
    }

    /// Appends a SIP message of the call to its flow; past
    /// [`SIP_FLOW_LIMIT`] it is only counted.
    pub fn push_sip(&mut self, entry: SipFlowEntry) {
        if self.sip_flow.len() < SIP_FLOW_LIMIT {
            self.sip_flow.push(entry);
        } else {
            self.sip_flow_omitted += 1;
        }
    }

    /// The call ended at `at` as `hangup` says: the finished record.
    ///
    /// The disposition is `ANSWERED` if [`answered`](Self::answered) was
    /// called; otherwise `NO ANSWER` for a caller's CANCEL
    /// ([`HangupCause::OriginatorCancel`]) or the ring timeout
    /// ([`HangupCause::RingTimeout`]), whatever status was sent, and
    /// [`Disposition::from_final_status`] of `hangup.sip_status` for the
    /// rest. A 2xx status without a call to `answered` still means the
    /// call was answered; the answer time is then taken as the end, so the
    /// record never says `ANSWERED` without an answer time.
    ///
    /// `duration` counts whole seconds from start to end and `billsec`
    /// from answer to end, both 0 if the wall clock went back.
    pub fn end(self, at: SystemTime, hangup: Hangup) -> Cdr {
        let end_time = Timestamp::from(at);
        let disposition = match (self.answer_time, hangup.cause) {
            (Some(_), _) => Disposition::Answered,
            (None, HangupCause::OriginatorCancel | HangupCause::RingTimeout) => {
                Disposition::NoAnswer
            }
            (None, _) => Disposition::from_final_status(hangup.sip_status),
        };
        let answer_time = match disposition {
            Disposition::Answered => Some(self.answer_time.unwrap_or(end_time)),
            _ => None,
        };
        Cdr {
            id: self.id,
            call_id: self.call_id,
            caller: self.caller,
            callee: self.callee,
            source_channel: self.source_channel,
            destination_channel: self.destination_channel,
            direction: self.direction,
            start_time: self.start_time,
            ring_time: self.ring_time,
            answer_time,
            end_time,
            duration: end_time.seconds_since(self.start_time),
            billsec: answer_time.map_or(0, |answer| end_time.seconds_since(answer)),
            disposition,
            hangup,
            recording: self.recording,
            sip_flow: self.sip_flow,
            sip_flow_omitted: self.sip_flow_omitted,
        }
    }
}
