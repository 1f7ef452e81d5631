//! The call detail record and its parts.

use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Declares an enum whose variants have fixed names in JSON and in the
/// database, from one table, so the two can never disagree.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used in JSON and in the stores.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;

            fn from_str(text: &str) -> Result<$name, UnknownName> {
                match text {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(UnknownName {
                        kind: stringify!($name),
                        text: text.to_owned(),
                    }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        #[cfg(feature = "schemars")]
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "enum": [$($text),+] })
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A name that is none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a {kind}")]
pub struct UnknownName {
    kind: &'static str,
    text: String,
}

named_enum! {
    /// Which way a call crossed the PBX.
    Direction {
        /// From a trunk to a local user.
        Inbound = "inbound",
        /// From a local user to a trunk.
        Outbound = "outbound",
        /// Between two local users.
        Internal = "internal",
    }
}

named_enum! {
    /// How the call ended, in the four values every PBX's CDR uses.
    ///
    /// An answered call is `ANSWERED` however it ended. For a call never
    /// answered, [`CdrBuilder::end`](crate::CdrBuilder::end) derives it from
    /// the [`Hangup`]: a caller's CANCEL or the PBX's ring timeout is
    /// `NO ANSWER`; otherwise the final SIP status decides, as
    /// [`Disposition::from_final_status`] says.
    Disposition {
        /// Someone answered (a 2xx to the INVITE).
        Answered = "ANSWERED",
        /// It rang and nobody answered, or the caller gave up first.
        NoAnswer = "NO ANSWER",
        /// The callee was busy.
        Busy = "BUSY",
        /// Anything else: refused, unreachable, no route, an error.
        Failed = "FAILED",
    }
}

impl Disposition {
    /// The disposition a final response to the INVITE means, as Asterisk
    /// and FreeSWITCH count it:
    ///
    /// | final status | disposition |
    /// |---|---|
    /// | 2xx | `ANSWERED` |
    /// | 486 Busy Here, 600 Busy Everywhere | `BUSY` |
    /// | 408 Request Timeout, 480 Temporarily Unavailable, 487 Request Terminated | `NO ANSWER` |
    /// | any other, or none at all | `FAILED` |
    ///
    /// 487 is what a cancelled INVITE ends with, whether the caller or the
    /// PBX's ring timeout cancelled it, so it counts as unanswered; 408 and
    /// 480 are what phones and proxies answer when nobody picks up.
    pub fn from_final_status(status: Option<u16>) -> Disposition {
        match status {
            Some(200..=299) => Disposition::Answered,
            Some(486 | 600) => Disposition::Busy,
            Some(408 | 480 | 487) => Disposition::NoAnswer,
            _ => Disposition::Failed,
        }
    }
}

named_enum! {
    /// What ended the call.
    HangupCause {
        /// An answered call ended by a BYE, or by the PBX (an API hangup,
        /// a maximum duration, shutdown).
        NormalClearing = "normal_clearing",
        /// The caller hung up before the answer (CANCEL).
        OriginatorCancel = "originator_cancel",
        /// Nobody answered before the PBX's ring timeout.
        RingTimeout = "ring_timeout",
        /// A final non-2xx response refused the call: the callee's (busy,
        /// decline) or the PBX's own (no route, forbidden).
        Rejected = "rejected",
        /// No final response came: the transport failed, the callee never
        /// replied, or the PBX failed.
        Failure = "failure",
    }
}

named_enum! {
    /// Who ended the call.
    Side {
        /// The calling party.
        Caller = "caller",
        /// The called party (or the trunk or phone answering for it).
        Callee = "callee",
        /// The PBX itself: a timer, a rule, an API command, an error.
        Pbx = "pbx",
    }
}

named_enum! {
    /// Whether the PBX received or sent a SIP message.
    SipDirection {
        /// From a peer to the PBX.
        Received = "received",
        /// From the PBX to a peer.
        Sent = "sent",
    }
}

/// A record's identifier, unique across stores and nodes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct CdrId(String);

impl CdrId {
    /// An identifier given by the caller (for example one kept from an
    /// older system).
    pub fn new(id: impl Into<String>) -> CdrId {
        CdrId(id.into())
    }

    /// A fresh UUID version 7 (RFC 9562): 48 bits of Unix milliseconds then
    /// 74 random bits. Ids made on any node never collide in practice, sort
    /// roughly by creation time, and fit a PostgreSQL `uuid` column.
    pub fn generate() -> CdrId {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let random: u128 = rand::random();
        let bits = (millis & 0xffff_ffff_ffff) << 80
            | 0x7 << 76 // version 7
            | (random & 0xfff) << 64
            | 0b10 << 62 // the RFC 9562 variant
            | (random >> 12) & 0x3fff_ffff_ffff_ffff;
        let hex = format!("{bits:032x}");
        CdrId(format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        ))
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CdrId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One end of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Party {
    /// The number or user part: `1001`, `+14155550123`.
    pub number: String,
    /// The display name, when one was given.
    pub name: Option<String>,
}

impl Party {
    /// A party with a number and maybe a display name.
    pub fn new(number: impl Into<String>, name: Option<&str>) -> Party {
        Party {
            number: number.into(),
            name: name.map(str::to_owned),
        }
    }
}

/// How and by whom the call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Hangup {
    /// What ended it.
    pub cause: HangupCause,
    /// The final response to the caller's INVITE: 200 for an answered
    /// call, 487 when cancelled, the callee's or the PBX's failure status
    /// otherwise; `None` when the call ended without one.
    pub sip_status: Option<u16>,
    /// Free text that explains more, such as a `Reason` header
    /// (`Q.850;cause=16`) or the PBX's own words (`no route to 999`).
    pub reason: Option<String>,
    /// Who ended it.
    pub by: Side,
}

impl Hangup {
    /// A hangup with no `reason` text.
    pub fn new(cause: HangupCause, sip_status: Option<u16>, by: Side) -> Hangup {
        Hangup {
            cause,
            sip_status,
            reason: None,
            by,
        }
    }
}

/// One SIP message of the call, as the PBX received or sent it: the rungs
/// of a ladder diagram, whose columns are the distinct addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SipFlowEntry {
    /// When the PBX received or sent it.
    pub time: Timestamp,
    /// Whether the PBX received or sent it.
    pub direction: SipDirection,
    /// `UDP`, `TCP`, `TLS`, `WS` or `WSS`.
    pub transport: String,
    /// The sender's address.
    pub source: SocketAddr,
    /// The receiver's address.
    pub destination: SocketAddr,
    /// The whole message as it went on the wire.
    pub message: String,
}

impl SipFlowEntry {
    /// An entry for `message`, received or sent at `time`.
    pub fn new(
        time: SystemTime,
        direction: SipDirection,
        transport: impl Into<String>,
        source: SocketAddr,
        destination: SocketAddr,
        message: impl Into<String>,
    ) -> SipFlowEntry {
        SipFlowEntry {
            time: time.into(),
            direction,
            transport: transport.into(),
            source,
            destination,
            message: message.into(),
        }
    }

    /// The message's start line (`INVITE sip:1002@pbx SIP/2.0`,
    /// `SIP/2.0 180 Ringing`): the label of its arrow in a ladder.
    pub fn start_line(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }
}

/// The record of one call. Its JSON is the `calllog.json` webhooks push
/// and the REST API serves; the crate documentation shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Cdr {
    /// The record's identifier.
    pub id: CdrId,
    /// The SIP Call-ID of the caller's leg.
    pub call_id: String,
    /// Who called.
    pub caller: Party,
    /// Who was called, as dialled.
    pub callee: Party,
    /// The engine's name for where the call came from
    /// (`extension/1001`, `trunk/carrier-a`).
    pub source_channel: String,
    /// Where it was sent, once routed; `None` if it never was.
    pub destination_channel: Option<String>,
    /// Which way it crossed the PBX.
    pub direction: Direction,
    /// When the INVITE arrived.
    pub start_time: Timestamp,
    /// When it first rang (the first 180 or 183).
    pub ring_time: Option<Timestamp>,
    /// When it was answered (the 2xx).
    pub answer_time: Option<Timestamp>,
    /// When it ended.
    pub end_time: Timestamp,
    /// Whole seconds from start to end (truncated, as Asterisk counts).
    pub duration: u64,
    /// Whole seconds from answer to end, 0 if never answered.
    pub billsec: u64,
    /// How it ended, for billing and reports.
    pub disposition: Disposition,
    /// How and by whom it ended.
    pub hangup: Hangup,
    /// Where the recording is (a path or an object-store key), if any.
    pub recording: Option<String>,
    /// Every SIP message of the call, in the order the PBX handled them,
    /// up to [`SIP_FLOW_LIMIT`](crate::SIP_FLOW_LIMIT).
    pub sip_flow: Vec<SipFlowEntry>,
    /// How many messages past the limit were left out of `sip_flow`.
    pub sip_flow_omitted: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

    use super::*;

    #[test]
    fn names_read_back_and_match_json() {
        fn check<T>(all: &[T])
        where
            T: Copy + fmt::Display + std::str::FromStr + Serialize + PartialEq + fmt::Debug,
            T::Err: fmt::Debug,
        {
            for &value in all {
                let name = value.to_string();
                assert_eq!(name.parse::<T>().unwrap(), value);
                assert_eq!(serde_json::to_string(&value).unwrap(), format!("{name:?}"));
            }
        }
        check(Direction::ALL);
        check(Disposition::ALL);
        check(HangupCause::ALL);
        check(Side::ALL);
        check(SipDirection::ALL);
        let err = "ANSWER".parse::<Disposition>().unwrap_err();
        assert_eq!(err.to_string(), "\"ANSWER\" is not a Disposition");
        assert!(serde_json::from_str::<Direction>("\"Inbound\"").is_err());
    }

    #[test]
    fn final_status_mapping() {
        use Disposition::*;
        let table = [
            (Some(200), Answered),
            (Some(202), Answered),
            (Some(486), Busy),
            (Some(600), Busy),
            (Some(408), NoAnswer),
            (Some(480), NoAnswer),
            (Some(487), NoAnswer),
            (Some(404), Failed),
            (Some(403), Failed),
            (Some(603), Failed),
            (Some(503), Failed),
            (Some(180), Failed),
            (None, Failed),
        ];
        for (status, disposition) in table {
            assert_eq!(
                Disposition::from_final_status(status),
                disposition,
                "{status:?}"
            );
        }
    }

    #[test]
    fn generated_ids_are_uuid_v7() {
        let ids: Vec<CdrId> = (0..1000).map(|_| CdrId::generate()).collect();
        let unique: std::collections::HashSet<&CdrId> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            let text = id.as_str();
            assert_eq!(text.len(), 36);
            let groups: Vec<usize> = text.split('-').map(str::len).collect();
            assert_eq!(groups, [8, 4, 4, 4, 12]);
            assert_eq!(&text[14..15], "7", "version");
            assert!("89ab".contains(&text[19..20]), "variant");
        }
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let stamped = u128::from_str_radix(&ids[0].as_str()[..8], 16).unwrap() << 16
            | u128::from_str_radix(&ids[0].as_str()[9..13], 16).unwrap();
        assert!(
            millis - stamped < 60_000,
            "the id carries the time it was made"
        );
    }

    #[test]
    fn start_line_labels_the_arrow() {
        let addr: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let entry = SipFlowEntry::new(
            UNIX_EPOCH,
            SipDirection::Sent,
            "UDP",
            addr,
            addr,
            "SIP/2.0 180 Ringing\r\nVia: x\r\n\r\n",
        );
        assert_eq!(entry.start_line(), "SIP/2.0 180 Ringing");
    }
}
