//! Trunks: the carriers and other PBXs calls go out through and come in
//! from. Outbound, a trunk is a SIP URI the engine sends INVITEs to,
//! answering its digest challenges with the trunk's credentials, and
//! optionally a registrar the engine keeps registered with. Inbound, a
//! call whose source address a trunk's ACL admits comes from that trunk
//! (no digest asked of it), and its dialled number (DID) names the
//! extension it rings.

use crate::Error;
use crate::address::SipAddress;
use ipnet::IpNet;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::IpAddr;
use trunkline_registrar::authorization;
use trunkline_sip::{HeaderName, Message, StatusCode};
use trunkline_transaction::{Peer, Transport, new_tag};

/// Digest credentials a trunk challenges us for.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The account name.
    pub username: String,
    /// Its password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Logs of a configuration must not leak the password.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A carrier or another PBX.
#[derive(Debug, Clone)]
pub struct Trunk {
    /// What routes and records call it (`trunk/{name}`).
    pub name: String,
    address: SipAddress,
    /// The answer to its digest challenges, and the account it registers.
    pub credentials: Option<Credentials>,
    /// Keep registered with it ([`crate::Engine::register_trunks`]).
    pub register: bool,
    /// How long a registration is asked to last, in seconds.
    pub register_expires: u32,
    /// Sources whose calls come from this trunk.
    pub inbound_acl: Vec<IpNet>,
    /// Dialled number (DID) → the extension its inbound calls ring.
    pub dids: HashMap<String, String>,
}

impl Trunk {
    /// A trunk whose calls go to `uri` (`sip:host[:port][;transport=tcp]`,
    /// `sips:` for TLS), with no credentials, no registration and no
    /// inbound calls.
    pub fn new(name: impl Into<String>, uri: &str) -> Result<Trunk, Error> {
        let address = SipAddress::parse(uri).map_err(|why| Error::TrunkUri {
            uri: uri.to_owned(),
            why,
        })?;
        Ok(Trunk {
            name: name.into(),
            address,
            credentials: None,
            register: false,
            register_expires: 3600,
            inbound_acl: Vec::new(),
            dids: HashMap::new(),
        })
    }

    /// Whether a call from `source` comes from this trunk.
    pub fn admits(&self, source: IpAddr) -> bool {
        let source = source.to_canonical();
        self.inbound_acl.iter().any(|net| net.contains(&source))
    }

    /// The extension an inbound call to `dialled` rings.
    pub fn extension_for(&self, dialled: &str) -> Option<&str> {
        self.dids.get(dialled).map(String::as_str)
    }

    /// The transport its requests go over.
    pub fn transport(&self) -> Transport {
        self.address.transport()
    }

    /// The Request-URI of a call to `number` through this trunk.
    pub(crate) fn uri_for(&self, number: &str) -> String {
        let a = &self.address;
        format!("{}:{number}@{}{}", a.scheme(), a.host_port(), a.params())
    }

    /// The To (and, for registering, From) address of `user` at the trunk.
    pub(crate) fn address_of(&self, user: &str) -> String {
        let a = &self.address;
        format!("{}:{user}@{}", a.scheme(), a.host_port())
    }

    /// The Request-URI of a REGISTER (RFC 3261 §10.2: the domain, no user).
    pub(crate) fn registrar_uri(&self) -> String {
        let a = &self.address;
        format!("{}:{}{}", a.scheme(), a.host_port(), a.params())
    }

    /// Where its requests go (see [`SipAddress`]).
    pub(crate) async fn peer(&self) -> io::Result<Peer> {
        self.address.peer().await
    }

    /// The header answering the challenge in `response` (a 401 or 407) to
    /// `request`, or `None` without credentials or a challenge we can
    /// answer. The first challenge of an algorithm we implement is taken
    /// (RFC 8760 §2.4: the server lists them in its order of preference).
    pub(crate) fn answer(
        &self,
        request: &Message,
        response: &Message,
    ) -> Option<(HeaderName, String)> {
        let credentials = self.credentials.as_ref()?;
        let method = request.method()?.as_str();
        let uri = request.uri()?.as_str();
        let cnonce = new_tag();
        let answer = |challenge| {
            authorization(
                &challenge,
                method,
                uri,
                &credentials.username,
                &credentials.password,
                &cnonce,
                1,
            )
        };
        match response.status()? {
            StatusCode::UNAUTHORIZED => response
                .www_authenticates()
                .find_map(answer)
                .map(|value| (HeaderName::Authorization, value)),
            StatusCode::PROXY_AUTHENTICATION_REQUIRED => response
                .proxy_authenticates()
                .find_map(answer)
                .map(|value| (HeaderName::ProxyAuthorization, value)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;
    use trunkline_registrar::{Digest, DigestConfig, Secret, Verdict};

    fn carrier() -> Trunk {
        let mut trunk = Trunk::new("carrier", "sip:carrier.example:5080;transport=tcp").unwrap();
        trunk.credentials = Some(Credentials {
            username: "acct1234".into(),
            password: "carrier-secret".into(),
        });
        trunk
    }

    fn invite(trunk: &Trunk) -> Message {
        Message::request(
            trunkline_sip::Method::Invite,
            trunk.uri_for("+442071234567"),
        )
        .header(HeaderName::Via, "SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1")
        .header(HeaderName::From, "<sip:1001@pbx.example>;tag=1")
        .header(
            HeaderName::To,
            format!("<{}>", trunk.address_of("+442071234567")),
        )
        .header(HeaderName::CallId, "c1")
        .header(HeaderName::CSeq, "1 INVITE")
        .build()
        .unwrap()
    }

    #[test]
    fn addresses_keep_the_uris_host_port_and_transport() {
        let trunk = carrier();
        assert_eq!(
            trunk.uri_for("+442071234567"),
            "sip:+442071234567@carrier.example:5080;transport=tcp"
        );
        assert_eq!(
            trunk.address_of("acct1234"),
            "sip:acct1234@carrier.example:5080"
        );
        assert_eq!(
            trunk.registrar_uri(),
            "sip:carrier.example:5080;transport=tcp"
        );
        let tls = Trunk::new("t", "sips:[2001:db8::1]").unwrap();
        assert_eq!(
            (tls.transport(), tls.uri_for("1")),
            (Transport::Tls, "sips:1@[2001:db8::1]".into())
        );
        assert!(Trunk::new("t", "tel:+441234").is_err());
        assert!(Trunk::new("t", "sip:h;transport=carrier-pigeon").is_err());
    }

    #[test]
    fn the_acl_admits_its_networks_only() {
        let mut trunk = carrier();
        trunk.inbound_acl = vec![
            "203.0.113.0/24".parse().unwrap(),
            "2001:db8::7/128".parse().unwrap(),
        ];
        assert!(trunk.admits("203.0.113.9".parse().unwrap()));
        assert!(trunk.admits("2001:db8::7".parse().unwrap()));
        // An IPv4 source seen on a dual-stack socket.
        assert!(trunk.admits("::ffff:203.0.113.9".parse().unwrap()));
        assert!(!trunk.admits("203.0.114.9".parse().unwrap()));
        assert!(
            !Trunk::new("t", "sip:h")
                .unwrap()
                .admits("203.0.113.9".parse().unwrap())
        );
    }

    /// A proxy's 407 is answered in Proxy-Authorization, a server's 401 in
    /// Authorization, and our own registrar's digest accepts both; the
    /// first challenge we can answer (SHA-256 offered first) is taken.
    #[test]
    fn challenges_are_answered_in_the_header_the_status_asks_for() {
        let trunk = carrier();
        let request = invite(&trunk);
        let mut config = DigestConfig::new("carrier.example");
        config.algorithms = vec![
            trunkline_registrar::Algorithm::Sha256,
            trunkline_registrar::Algorithm::Md5,
        ];
        let digest = Digest::new(config, [7; 32]);
        let now = SystemTime::now();
        let secret = Secret::Password("carrier-secret".into());
        for (status, challenge_header, answer_header) in [
            (
                StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                HeaderName::ProxyAuthenticate,
                HeaderName::ProxyAuthorization,
            ),
            (
                StatusCode::UNAUTHORIZED,
                HeaderName::WwwAuthenticate,
                HeaderName::Authorization,
            ),
        ] {
            let mut challenge = request.response_to(status);
            for value in digest.challenges(now, false) {
                challenge = challenge.header(challenge_header, value);
            }
            let challenge = challenge.build().unwrap();
            let (header, value) = trunk.answer(&request, &challenge).unwrap();
            assert_eq!(header, answer_header);
            assert!(value.contains("algorithm=SHA-256"), "{value}");
            let answered = Message::parse(
                format!(
                    "INVITE sip:x SIP/2.0\r\nAuthorization: {value}\r\nContent-Length: 0\r\n\r\n"
                )
                .into(),
            )
            .unwrap();
            let auth = answered.authorizations().next().unwrap();
            assert!(matches!(
                digest.verify(now, &auth, "INVITE", &secret),
                Verdict::Valid
            ));
        }
        // Without credentials there is nothing to answer with.
        let anonymous = Trunk::new("t", "sip:carrier.example").unwrap();
        let challenge = request
            .response_to(StatusCode::UNAUTHORIZED)
            .header(
                HeaderName::WwwAuthenticate,
                digest.challenges(now, false)[0].clone(),
            )
            .build()
            .unwrap();
        assert!(anonymous.answer(&request, &challenge).is_none());
    }
}
