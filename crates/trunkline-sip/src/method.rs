//! Request methods and response status codes: wire codes that keep unknown values.

use bytestring::ByteString;
use std::fmt;

macro_rules! methods {
    ($( $(#[$doc:meta])* $variant:ident => $text:literal; )*) => {
        /// A SIP request method. Methods are case-sensitive (RFC 3261 §7.1);
        /// methods this crate does not know are kept verbatim.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Method {
            $( $(#[$doc])* $variant, )*
            /// Any other method token, as received.
            Extension(ByteString),
        }

        impl Method {
            /// The method as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Method::$variant => $text, )*
                    Method::Extension(m) => m,
                }
            }

            /// The well-known method spelled `s`, if any.
            pub fn known(s: &str) -> Option<Method> {
                match s {
                    $( $text => Some(Method::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

methods! {
    /// `INVITE` (RFC 3261)
    Invite => "INVITE";
    /// `ACK` (RFC 3261)
    Ack => "ACK";
    /// `BYE` (RFC 3261)
    Bye => "BYE";
    /// `CANCEL` (RFC 3261)
    Cancel => "CANCEL";
    /// `OPTIONS` (RFC 3261)
    Options => "OPTIONS";
    /// `REGISTER` (RFC 3261)
    Register => "REGISTER";
    /// `PRACK` (RFC 3262)
    Prack => "PRACK";
    /// `SUBSCRIBE` (RFC 6665)
    Subscribe => "SUBSCRIBE";
    /// `NOTIFY` (RFC 6665)
    Notify => "NOTIFY";
    /// `PUBLISH` (RFC 3903)
    Publish => "PUBLISH";
    /// `INFO` (RFC 6086)
    Info => "INFO";
    /// `REFER` (RFC 3515)
    Refer => "REFER";
    /// `MESSAGE` (RFC 3428)
    Message => "MESSAGE";
    /// `UPDATE` (RFC 3311)
    Update => "UPDATE";
}

impl Method {
    /// Parses a method token. `None` if `s` is not a `token`.
    pub fn parse(s: &str) -> Option<Method> {
        if s.is_empty() || !s.bytes().all(crate::grammar::is_token) {
            return None;
        }
        Some(Method::known(s).unwrap_or_else(|| Method::Extension(ByteString::from(s))))
    }

    /// Like [`Method::parse`] on the token `s` of `buffer`, which an
    /// extension method shares; a well-known one needs no share of it.
    pub(crate) fn from_shared(buffer: &ByteString, s: &str) -> Method {
        Method::known(s).unwrap_or_else(|| Method::Extension(buffer.slice_ref(s)))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Method {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Method {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A response status code, 100 to 699 (RFC 3261 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

macro_rules! status_codes {
    ($( $name:ident = $code:literal, $reason:literal; )*) => {
        impl StatusCode {
            $(
                #[doc = concat!("`", $code, " ", $reason, "`")]
                pub const $name: StatusCode = StatusCode($code);
            )*

            /// The reason phrase RFC 3261 (and the RFC defining the code)
            /// gives, or a generic one for the class.
            pub fn reason(self) -> &'static str {
                match self.0 {
                    $( $code => $reason, )*
                    100..=199 => "Trying",
                    200..=299 => "OK",
                    300..=399 => "Redirection",
                    400..=499 => "Client Error",
                    500..=599 => "Server Error",
                    _ => "Global Failure",
                }
            }
        }
    };
}

status_codes! {
    TRYING = 100, "Trying";
    RINGING = 180, "Ringing";
    CALL_IS_BEING_FORWARDED = 181, "Call Is Being Forwarded";
    QUEUED = 182, "Queued";
    SESSION_PROGRESS = 183, "Session Progress";
    OK = 200, "OK";
    ACCEPTED = 202, "Accepted";
    MULTIPLE_CHOICES = 300, "Multiple Choices";
    MOVED_PERMANENTLY = 301, "Moved Permanently";
    MOVED_TEMPORARILY = 302, "Moved Temporarily";
    USE_PROXY = 305, "Use Proxy";
    BAD_REQUEST = 400, "Bad Request";
    UNAUTHORIZED = 401, "Unauthorized";
    FORBIDDEN = 403, "Forbidden";
    NOT_FOUND = 404, "Not Found";
    METHOD_NOT_ALLOWED = 405, "Method Not Allowed";
    NOT_ACCEPTABLE = 406, "Not Acceptable";
    PROXY_AUTHENTICATION_REQUIRED = 407, "Proxy Authentication Required";
    REQUEST_TIMEOUT = 408, "Request Timeout";
    GONE = 410, "Gone";
    REQUEST_ENTITY_TOO_LARGE = 413, "Request Entity Too Large";
    REQUEST_URI_TOO_LONG = 414, "Request-URI Too Long";
    UNSUPPORTED_MEDIA_TYPE = 415, "Unsupported Media Type";
    UNSUPPORTED_URI_SCHEME = 416, "Unsupported URI Scheme";
    BAD_EXTENSION = 420, "Bad Extension";
    EXTENSION_REQUIRED = 421, "Extension Required";
    SESSION_INTERVAL_TOO_SMALL = 422, "Session Interval Too Small";
    INTERVAL_TOO_BRIEF = 423, "Interval Too Brief";
    TEMPORARILY_UNAVAILABLE = 480, "Temporarily Unavailable";
    CALL_OR_TRANSACTION_DOES_NOT_EXIST = 481, "Call/Transaction Does Not Exist";
    LOOP_DETECTED = 482, "Loop Detected";
    TOO_MANY_HOPS = 483, "Too Many Hops";
    ADDRESS_INCOMPLETE = 484, "Address Incomplete";
    AMBIGUOUS = 485, "Ambiguous";
    BUSY_HERE = 486, "Busy Here";
    REQUEST_TERMINATED = 487, "Request Terminated";
    NOT_ACCEPTABLE_HERE = 488, "Not Acceptable Here";
    BAD_EVENT = 489, "Bad Event";
    REQUEST_PENDING = 491, "Request Pending";
    UNDECIPHERABLE = 493, "Undecipherable";
    SERVER_INTERNAL_ERROR = 500, "Server Internal Error";
    NOT_IMPLEMENTED = 501, "Not Implemented";
    BAD_GATEWAY = 502, "Bad Gateway";
    SERVICE_UNAVAILABLE = 503, "Service Unavailable";
    SERVER_TIMEOUT = 504, "Server Time-out";
    VERSION_NOT_SUPPORTED = 505, "Version Not Supported";
    MESSAGE_TOO_LARGE = 513, "Message Too Large";
    BUSY_EVERYWHERE = 600, "Busy Everywhere";
    DECLINE = 603, "Decline";
    DOES_NOT_EXIST_ANYWHERE = 604, "Does Not Exist Anywhere";
    GLOBAL_NOT_ACCEPTABLE = 606, "Not Acceptable";
}

impl StatusCode {
    /// A status code from its number; `None` outside 100..=699.
    pub const fn new(code: u16) -> Option<StatusCode> {
        if code >= 100 && code <= 699 {
            Some(StatusCode(code))
        } else {
            None
        }
    }

    /// The number.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// 1xx.
    pub const fn is_provisional(self) -> bool {
        self.0 < 200
    }

    /// 2xx.
    pub const fn is_success(self) -> bool {
        self.0 >= 200 && self.0 < 300
    }

    /// 200 to 699.
    pub const fn is_final(self) -> bool {
        self.0 >= 200
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_case_sensitive_and_keep_extensions() {
        assert_eq!(Method::parse("INVITE"), Some(Method::Invite));
        assert_eq!(Method::parse("invite").unwrap().as_str(), "invite");
        assert!(matches!(
            Method::parse("invite"),
            Some(Method::Extension(_))
        ));
        assert_eq!(
            Method::parse("RE%47IST%45R").unwrap().as_str(),
            "RE%47IST%45R"
        );
        assert_eq!(Method::parse("BAD METHOD"), None);
        assert_eq!(Method::parse(""), None);
    }

    #[test]
    fn status_codes_range_and_reason() {
        assert_eq!(StatusCode::new(99), None);
        assert_eq!(StatusCode::new(700), None);
        assert_eq!(StatusCode::new(486).unwrap().reason(), "Busy Here");
        assert_eq!(StatusCode::new(499).unwrap().reason(), "Client Error");
        assert!(StatusCode::RINGING.is_provisional());
        assert!(StatusCode::OK.is_success() && StatusCode::OK.is_final());
    }
}
