//! Dialogs (RFC 3261 §12): their state, and the requests sent in them.
//! The transaction layer creates, updates and ends them; see
//! [`crate::Transactions`].

use crate::Error;
use crate::peer::Peer;
use bytestring::ByteString;
use std::net::{IpAddr, SocketAddr};
use trunkline_sip::{HeaderName, Host, Message, MessageBuilder, Method, Uri};

/// A dialog's identity: Call-ID, local tag and remote tag (§12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: ByteString,
    /// Our tag: From of the requests we send.
    pub local_tag: ByteString,
    /// The peer's tag.
    pub remote_tag: ByteString,
}

impl DialogId {
    /// The dialog a received request belongs to, if it carries a To tag.
    pub(crate) fn of_request(request: &Message) -> Option<DialogId> {
        Some(DialogId {
            call_id: request.share(request.call_id()?),
            local_tag: request.share(request.to_tag()?),
            remote_tag: request.share(request.from_tag()?),
        })
    }

    /// The dialog a response to one of our requests belongs to.
    pub(crate) fn of_response(response: &Message) -> Option<DialogId> {
        Some(DialogId {
            call_id: response.share(response.call_id()?),
            local_tag: response.share(response.from_tag()?),
            remote_tag: response.share(response.to_tag()?),
        })
    }
}

/// Early (a provisional response with a To tag) or confirmed (a 2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

/// One dialog's state (§12.1).
#[derive(Debug, Clone)]
pub struct Dialog {
    pub(crate) id: DialogId,
    pub(crate) state: DialogState,
    local_seq: u32,
    remote_seq: Option<u32>,
    /// Our From (To when we were called) with our tag, as written.
    local: ByteString,
    /// The peer's address with its tag, as written.
    remote: ByteString,
    remote_target: ByteString,
    /// `<uri>;params` entries, in the order requests list them.
    route_set: Vec<ByteString>,
    secure: bool,
    /// The flow the dialog was set up over.
    flow: Peer,
    /// A BYE went out or came in: the dialog ends with its transaction.
    pub(crate) ending: bool,
}

impl Dialog {
    /// The UAC side: our `request` and a response to it with a To tag
    /// (§12.1.2), from `flow`.
    pub(crate) fn as_uac(request: &Message, response: &Message, flow: Peer) -> Option<Dialog> {
        let mut route_set = route_entries(response, HeaderName::RecordRoute);
        route_set.reverse();
        Some(Dialog {
            id: DialogId::of_response(response)?,
            state: state_of(response),
            local_seq: request.cseq()?.seq,
            remote_seq: None,
            local: request.share(request.header(HeaderName::From)?),
            remote: response.share(response.header(HeaderName::To)?),
            remote_target: target_of(response)
                .unwrap_or_else(|| request.share(request.uri_str().unwrap_or_default())),
            route_set,
            secure: is_sips(request.uri_str()?),
            flow,
            ending: false,
        })
    }

    /// The UAS side: a `request` from `flow` and our response with a To
    /// tag (§12.1.1).
    pub(crate) fn as_uas(request: &Message, response: &Message, flow: Peer) -> Option<Dialog> {
        Some(Dialog {
            id: DialogId {
                call_id: request.share(request.call_id()?),
                local_tag: response.share(response.to_tag()?),
                remote_tag: request.share(request.from_tag()?),
            },
            state: state_of(response),
            local_seq: 0,
            remote_seq: Some(request.cseq()?.seq),
            local: response.share(response.header(HeaderName::To)?),
            remote: request.share(request.header(HeaderName::From)?),
            remote_target: target_of(request)?,
            route_set: route_entries(request, HeaderName::RecordRoute),
            secure: is_sips(request.uri_str()?),
            flow,
            ending: false,
        })
    }

    /// A later response of the INVITE that created this UAC dialog: the
    /// route set and target follow the newest one, until confirmed
    /// (§12.1.2, §13.2.2.4).
    pub(crate) fn update_from_response(&mut self, response: &Message) {
        if self.state == DialogState::Confirmed {
            return;
        }
        let mut route_set = route_entries(response, HeaderName::RecordRoute);
        route_set.reverse();
        self.route_set = route_set;
        if let Some(target) = target_of(response) {
            self.remote_target = target;
        }
        self.state = state_of(response);
    }

    /// A target refresh (re-INVITE, UPDATE) replaces the remote target
    /// with its Contact (§12.2).
    pub(crate) fn refresh_target(&mut self, message: &Message) {
        if let Some(target) = target_of(message) {
            self.remote_target = target;
        }
    }

    /// Checks and records the CSeq of a request received in the dialog:
    /// one lower than the last is out of order (§12.2.2).
    pub(crate) fn accept_remote_seq(&mut self, seq: u32) -> bool {
        if self.remote_seq.is_some_and(|last| seq < last) {
            return false;
        }
        self.remote_seq = Some(seq);
        true
    }

    /// The identity.
    pub fn id(&self) -> &DialogId {
        &self.id
    }
    /// Early or confirmed.
    pub fn state(&self) -> DialogState {
        self.state
    }
    /// The CSeq number of the last request we sent in the dialog.
    pub fn local_seq(&self) -> u32 {
        self.local_seq
    }
    /// The CSeq number of the last request the peer sent, if any.
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }
    /// Our address with our tag (the From of our requests).
    pub fn local(&self) -> &str {
        &self.local
    }
    /// The peer's address with its tag (the To of our requests).
    pub fn remote(&self) -> &str {
        &self.remote
    }
    /// The peer's Contact URI: where requests in the dialog are addressed.
    pub fn remote_target(&self) -> &str {
        &self.remote_target
    }
    /// The route set, in the order our requests carry it.
    pub fn route_set(&self) -> &[ByteString] {
        &self.route_set
    }
    /// Whether the dialog was set up with a `sips` URI.
    pub fn is_secure(&self) -> bool {
        self.secure
    }
    /// The flow the dialog was set up over.
    pub fn flow(&self) -> Peer {
        self.flow
    }

    /// Where requests in the dialog go: to the first route when it names an
    /// IP address, otherwise back over the dialog's own flow, which also
    /// reaches a peer behind NAT whose Contact is a private address.
    pub fn next_hop(&self) -> Peer {
        let first_route = self
            .route_set
            .first()
            .and_then(|r| literal_peer(route_uri(r), self.flow));
        first_route.unwrap_or(self.flow)
    }

    /// A request in the dialog (§12.2.1.1): Request-URI and Route from
    /// the route set and remote target (loose or strict routing), From, To,
    /// Call-ID, the next CSeq and Max-Forwards. The caller adds Via (see
    /// [`crate::Transactions::request_in_dialog`]), Contact where the
    /// method needs it, and a body.
    pub(crate) fn request(&mut self, method: Method) -> Result<MessageBuilder, Error> {
        if matches!(method, Method::Ack | Method::Cancel) {
            return Err(Error::State(
                "ACK and CANCEL reuse their INVITE's CSeq: use ack_in_dialog or cancel",
            ));
        }
        self.local_seq = self.local_seq.wrapping_add(1);
        Ok(self.request_with_seq(method, self.local_seq))
    }

    pub(crate) fn request_with_seq(&self, method: Method, seq: u32) -> MessageBuilder {
        let loose = self.route_set.first().is_none_or(|r| {
            Uri::parse(route_uri(r)).is_ok_and(|u| u.as_sip().is_some_and(|s| s.is_loose_route()))
        });
        let (uri, routes): (ByteString, Vec<ByteString>) = if loose {
            (self.remote_target.clone(), self.route_set.clone())
        } else {
            // Strict routing: the first route becomes the Request-URI and
            // the remote target the last route (§12.2.1.1).
            let uri = route_uri(&self.route_set[0]);
            let mut routes = self.route_set[1..].to_vec();
            routes.push(ByteString::from(format!("<{}>", self.remote_target)));
            (ByteString::from(uri), routes)
        };
        let cseq = format!("{seq} {method}");
        let mut builder = Message::request(method, uri).header(HeaderName::MaxForwards, "70");
        for route in routes {
            builder = builder.header(HeaderName::Route, route);
        }
        builder
            .header(HeaderName::From, self.local.clone())
            .header(HeaderName::To, self.remote.clone())
            .header(HeaderName::CallId, self.id.call_id.clone())
            .header(HeaderName::CSeq, cseq)
    }
}

fn state_of(response: &Message) -> DialogState {
    if response.status().is_some_and(|s| s.is_success()) {
        DialogState::Confirmed
    } else {
        DialogState::Early
    }
}

fn target_of(message: &Message) -> Option<ByteString> {
    let contact = message.contact()?;
    Some(message.share(contact.uri().as_str()))
}

fn route_entries(message: &Message, name: HeaderName) -> Vec<ByteString> {
    let values = match name {
        HeaderName::RecordRoute => message.record_routes(),
        _ => message.routes(),
    };
    values
        .map(|r| ByteString::from(format!("<{}>{}", r.uri().as_str(), r.params().as_str())))
        .collect()
}

/// The URI of a `<uri>;params` route entry.
fn route_uri(entry: &str) -> &str {
    let inner = entry.strip_prefix('<').unwrap_or(entry);
    inner.split('>').next().unwrap_or(inner)
}

fn is_sips(uri: &str) -> bool {
    uri.get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
}

/// The peer a SIP URI names when its host is an IP address: its port, or
/// the default of its transport; its `transport` parameter, or the flow's.
fn literal_peer(uri: &str, flow: Peer) -> Option<Peer> {
    let Ok(Uri::Sip(sip)) = Uri::parse(uri) else {
        return None;
    };
    let ip: IpAddr = match sip.host() {
        Host::Ipv4(a) => a.into(),
        Host::Ipv6(a) => a.into(),
        Host::Domain(_) => return None,
    };
    let transport = sip
        .transport()
        .and_then(crate::Transport::parse)
        .unwrap_or(flow.transport);
    let default_port = if transport == crate::Transport::Tls {
        5061
    } else {
        5060
    };
    let addr = SocketAddr::new(ip, sip.port().unwrap_or(default_port));
    let connection = (addr == flow.addr && transport == flow.transport)
        .then_some(flow.connection)
        .flatten();
    Some(Peer {
        transport,
        addr,
        connection,
    })
}
