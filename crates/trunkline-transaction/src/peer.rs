//! Where messages come from and go to, as the sans-IO core sees it.

use bytes::Bytes;
use std::fmt;
use std::net::SocketAddr;

/// A SIP transport (RFC 3261 §18, RFC 7118 for WebSocket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: unreliable, so the transaction layer retransmits.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// WebSocket (RFC 7118).
    Ws,
    /// WebSocket over TLS.
    Wss,
}

impl Transport {
    /// Whether the transport delivers reliably, which turns the
    /// retransmission timers off and the wait timers D, I, J, K to zero
    /// (RFC 3261 §17).
    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }

    /// The Via `sent-protocol` transport token.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// Every transport.
    pub const ALL: [Transport; 5] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Ws,
        Transport::Wss,
    ];

    /// The transport a Via or `transport=` parameter names, any case.
    pub fn parse(token: &str) -> Option<Transport> {
        Transport::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(token))
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one stream connection (TCP, TLS, WebSocket) in the transport
/// that owns it, so a response goes back over the connection its request
/// came in on (RFC 3261 §18.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// The far end of a message: the transport, the remote address and, for a
/// stream transport, the connection when one is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The transport.
    pub transport: Transport,
    /// The remote address.
    pub addr: SocketAddr,
    /// The connection the message came in on, or must go out on; `None`
    /// lets the transport pick or open one to `addr`.
    pub connection: Option<ConnectionId>,
}

impl Peer {
    /// A peer reached over `transport` at `addr`, on no particular
    /// connection.
    pub fn new(transport: Transport, addr: SocketAddr) -> Peer {
        Peer {
            transport,
            addr,
            connection: None,
        }
    }
}

/// A message to send: what the I/O layer takes from
/// [`crate::Transactions::poll_transmit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub peer: Peer,
    /// The serialized message. Retransmissions share these bytes.
    pub bytes: Bytes,
}
