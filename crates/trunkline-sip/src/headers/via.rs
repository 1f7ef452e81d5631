//! `Via` (RFC 3261 §20.42, RFC 3581 `rport`).

use crate::grammar::{PResult, eat, lws, sep, sws, token};
use crate::params::{Params, header_params_checked};
use crate::uri::{Host, host, port};

/// The RFC 3261 branch prefix that marks a globally unique branch (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One `via-parm`: the transport and address a hop sent the request from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    protocol: &'a str,
    version: &'a str,
    transport: &'a str,
    host: Host<'a>,
    port: Option<u16>,
    params: Params<'a>,
    /// The first `branch` parameter, noted while the parameters were checked.
    branch: Option<&'a str>,
}

impl<'a> Via<'a> {
    /// The protocol name, `SIP`.
    pub fn protocol(&self) -> &'a str {
        self.protocol
    }
    /// The protocol version, `2.0`.
    pub fn version(&self) -> &'a str {
        self.version
    }
    /// The transport as written: `UDP`, `TCP`, `TLS`, `WS`, `WSS`, `SCTP`…
    pub fn transport(&self) -> &'a str {
        self.transport
    }
    /// The host of `sent-by`.
    pub fn host(&self) -> Host<'a> {
        self.host
    }
    /// The port of `sent-by`, if written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// All parameters.
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The `branch` parameter: the transaction identifier.
    pub fn branch(&self) -> Option<&'a str> {
        self.branch
    }
    /// Whether the branch is an RFC 3261 one: it starts with the magic
    /// cookie and has something after it (RFC 4475 §3.2.1).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }
    /// The `received` parameter (§18.2.1).
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received")
    }
    /// The `rport` parameter (RFC 3581): `None` if absent, `Some(None)` if
    /// present without a value (a request asking for it), `Some(Some(port))`
    /// once filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|p| p.parse().ok())
    }
    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.get("maddr")
    }
    /// The `ttl` parameter.
    pub fn ttl(&self) -> Option<u8> {
        self.params.get("ttl").and_then(|t| t.parse().ok())
    }
}

/// `via-ttl`, `via-received`, `via-branch` and RFC 3581 `rport` rules.
fn via_param(name: &str, value: Option<&str>) -> Result<(), &'static str> {
    // The length first: most parameters are none of these.
    let is = |known: &str| name.eq_ignore_ascii_case(known);
    let ok = match name.len() {
        3 if is("ttl") => value.and_then(|v| v.parse::<u8>().ok()).is_some(),
        5 if is("rport") => value.is_none_or(|v| v.parse::<u16>().is_ok()),
        6 if is("branch") => value.is_some(),
        8 if is("received") => value.is_some(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err("bad ttl, rport, branch or received parameter")
    }
}

/// `protocol-name SLASH protocol-version SLASH`, the start of `sent-protocol`.
fn sent_protocol_name_version(i: &str) -> PResult<'_, (&str, &str)> {
    let (i, protocol) = token(i)?;
    let (i, ()) = sep(b'/', "expected '/' in the sent-protocol")(i)?;
    let (i, version) = token(i)?;
    let (i, ()) = sep(b'/', "expected '/' before the transport")(i)?;
    Ok((i, (protocol, version)))
}

/// `via-parm = sent-protocol LWS sent-by *( SEMI via-params )`
pub(crate) fn via(i: &str) -> PResult<'_, Via<'_>> {
    let (i, (protocol, version)) = match i.strip_prefix("SIP/2.0/") {
        // What every Via says, read without the general rule's steps.
        Some(rest) => (sws(rest), (&i[..3], &i[4..7])),
        None => sent_protocol_name_version(i)?,
    };
    let (i, transport) = token(i)?;
    let (i, ()) = lws(i)?;
    let (i, host) = host(i)?;
    let (i, port) = match eat(i, b':') {
        Some(p) => {
            let (i, p) = port(p)?;
            (i, Some(p))
        }
        None => (i, None),
    };
    let (i, (params, branch)) = header_params_checked(i, "branch", via_param)?;
    Ok((
        i,
        Via {
            protocol,
            version,
            transport,
            host,
            port,
            params,
            branch,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::all;

    #[test]
    fn via_with_everything() {
        let v = all(
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport;received=198.51.100.7;ttl=16;maddr=224.2.0.1",
            via,
        )
        .unwrap();
        assert_eq!(
            (v.protocol(), v.version(), v.transport()),
            ("SIP", "2.0", "UDP")
        );
        assert_eq!(v.host(), Host::Ipv4("192.0.2.1".parse().unwrap()));
        assert_eq!(v.port(), Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bK776asdhds"));
        assert!(v.has_rfc3261_branch());
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("198.51.100.7"));
        assert_eq!(v.ttl(), Some(16));
        assert_eq!(v.maddr(), Some("224.2.0.1"));
    }

    #[test]
    fn via_with_linear_whitespace_everywhere() {
        // RFC 4475 §3.1.1.1, after unfolding.
        let v = all(
            "SIP  / 2.0  / TCP     spindle.example.com   ;   branch  =   z9hG4bK9ikj8  ",
            via,
        )
        .unwrap();
        assert_eq!(v.transport(), "TCP");
        assert_eq!(v.host(), Host::Domain("spindle.example.com"));
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
        for (text, protocol) in [
            ("SIP/2.0/  TLS h", ("SIP", "2.0", "TLS")),
            ("SIP/2.0 /TLS h", ("SIP", "2.0", "TLS")),
            ("sip/2.0/tls h", ("sip", "2.0", "tls")),
            ("SIP/3.0/TLS h", ("SIP", "3.0", "TLS")),
        ] {
            let v = all(text, via).unwrap();
            assert_eq!((v.protocol(), v.version(), v.transport()), protocol);
        }
        let v = all("SIP/2.0/UDP [2001:db8::9] : 5070;rport=5071", via).unwrap();
        assert_eq!(v.port(), Some(5070));
        assert_eq!(v.rport(), Some(Some(5071)));
    }

    #[test]
    fn bad_vias() {
        for bad in [
            "SIP/2.0/UDP 192.0.2.15;;",
            "SIP/2.0/UDP",
            "SIP/2.0/",
            "SIP/2.0/ host",
            "SIP/2.0 UDP host",
            "SIP/2.0/UDPhost",
            "SIP/2.0/UDP host;ttl=300",
            "SIP/2.0/UDP host;rport=x",
            "SIP/2.0/UDP host;branch",
            "SIP/2.0/UDP host:70000",
        ] {
            assert!(all(bad, via).is_err(), "{bad}");
        }
        let badbranch = all("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK", via).unwrap();
        assert!(!badbranch.has_rfc3261_branch());
    }
}
