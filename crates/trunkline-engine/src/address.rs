//! SIP URIs the engine sends requests to directly (a trunk, a router's
//! target): the host, port and transport they name, and where that is.

use std::io;
use trunkline_sip::Uri;
use trunkline_transaction::{Peer, Transport};

/// A `sip:` or `sips:` URI requests are sent to as it names them: its
/// host resolved by A/AAAA (the SRV and NAPTR steps of RFC 3263 are not
/// taken, so a URI names its port when it is not the default), its
/// `transport` parameter (UDP by default, TLS for `sips:`).
///
/// ```
/// use trunkline_engine::SipAddress;
///
/// let phone = SipAddress::parse("sip:1001@192.0.2.50:5070;transport=tcp")?;
/// assert_eq!(phone.uri(), "sip:1001@192.0.2.50:5070;transport=tcp");
/// assert_eq!(phone.user(), Some("1001"));
/// assert!(SipAddress::parse("tel:+441234").is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipAddress {
    /// The URI as given.
    uri: String,
    user: Option<String>,
    scheme: &'static str,
    /// The host as the URI writes it (`[::1]` for IPv6).
    host: String,
    port: Option<u16>,
    transport: Transport,
}

impl SipAddress {
    /// Reads `uri`; the error says what is wrong with it.
    pub fn parse(uri: &str) -> Result<SipAddress, String> {
        let parsed = Uri::parse(uri).map_err(|e| e.to_string())?;
        let sip = parsed
            .as_sip()
            .ok_or_else(|| "not a sip: or sips: URI".to_owned())?;
        let transport = match sip.transport() {
            None if sip.is_secure() => Transport::Tls,
            None => Transport::Udp,
            Some(name) => {
                Transport::parse(name).ok_or_else(|| format!("unknown transport {name:?}"))?
            }
        };
        let host = sip.host().to_string();
        if host.is_empty() {
            return Err("no host".into());
        }
        Ok(SipAddress {
            uri: uri.to_owned(),
            user: sip.user().map(str::to_owned),
            scheme: if sip.is_secure() { "sips" } else { "sip" },
            host,
            port: sip.port(),
            transport,
        })
    }

    /// The URI as given.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Its user part, if it has one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Its host as the URI writes it (`[::1]` for IPv6).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The transport requests to it go over.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    pub(crate) fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// `host[:port]` as the URI writes them.
    pub(crate) fn host_port(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The `transport` parameter a URI built from this one needs: none
    /// for the scheme's own transport.
    pub(crate) fn params(&self) -> &'static str {
        match (self.scheme, self.transport) {
            ("sip", Transport::Udp) | ("sips", Transport::Tls) => "",
            (_, transport) => transport_param(transport),
        }
    }

    /// Where its requests go: the host resolved through DNS (A and AAAA),
    /// at the URI's port or the transport's default.
    pub(crate) async fn peer(&self) -> io::Result<Peer> {
        let default_port = match self.transport {
            Transport::Tls | Transport::Wss => 5061,
            _ => 5060,
        };
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let port = self.port.unwrap_or(default_port);
        let addr = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        Ok(Peer::new(self.transport, addr))
    }
}

/// The URI parameter naming `transport`, empty for UDP (the default).
pub(crate) fn transport_param(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
        Transport::Ws | Transport::Wss => ";transport=ws",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_uri_names_its_host_port_and_transport() {
        let tcp = SipAddress::parse("sip:1001@127.0.0.1:5070;transport=tcp").unwrap();
        assert_eq!(tcp.peer().await.unwrap().addr.to_string(), "127.0.0.1:5070");
        assert_eq!(tcp.peer().await.unwrap().transport, Transport::Tcp);
        let udp = SipAddress::parse("sip:127.0.0.1").unwrap();
        assert_eq!(udp.peer().await.unwrap().addr.to_string(), "127.0.0.1:5060");
        assert_eq!((udp.user(), udp.params()), (None, ""));
        let tls = SipAddress::parse("sips:[::1]").unwrap();
        assert_eq!(tls.peer().await.unwrap().addr.to_string(), "[::1]:5061");
        assert!(SipAddress::parse("sip:h;transport=carrier-pigeon").is_err());
        assert!(SipAddress::parse("http://example.com/").is_err());
    }
}
