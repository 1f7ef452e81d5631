//! RFC 4733 telephone events (DTMF over RTP): the 4-byte payload.

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code: 0–9, 10 `*`, 11 `#`, 12–15 `A`–`D`, 16 flash.
    pub event: u8,
    /// The last packet of the event.
    pub end: bool,
    /// Power level in −dBm0, 0 to 63.
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

/// Why a payload is not a telephone event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a telephone-event payload is 4 bytes (or a multiple), got {0}")]
pub struct DtmfError(pub usize);

impl TelephoneEvent {
    /// Reads the first event of `payload` (RFC 4733 §2.3; redundant
    /// events after it are ignored).
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, DtmfError> {
        let &[event, flags, high, low, ..] = payload else {
            return Err(DtmfError(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([high, low]),
        })
    }

    /// The 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let [high, low] = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            high,
            low,
        ]
    }

    /// The key the event stands for, if it is a DTMF digit.
    pub fn digit(self) -> Option<char> {
        Some(match self.event {
            0..=9 => char::from(b'0' + self.event),
            10 => '*',
            11 => '#',
            12..=15 => char::from(b'A' + self.event - 12),
            _ => return None,
        })
    }

    /// The event code of a DTMF key (`0`–`9`, `*`, `#`, `A`–`D`).
    pub fn code_of(digit: char) -> Option<u8> {
        Some(match digit.to_ascii_uppercase() {
            d @ '0'..='9' => d as u8 - b'0',
            '*' => 10,
            '#' => 11,
            d @ 'A'..='D' => d as u8 - b'A' + 12,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_name_their_keys() {
        let five = TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(five.to_bytes(), [5, 0x8a, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&five.to_bytes()), Ok(five));
        assert_eq!(five.digit(), Some('5'));
        for key in "0123456789*#ABCD".chars() {
            let code = TelephoneEvent::code_of(key).unwrap_or(255);
            let event = TelephoneEvent {
                event: code,
                end: false,
                volume: 0,
                duration: 0,
            };
            assert_eq!(event.digit(), Some(key));
        }
        assert_eq!(TelephoneEvent::code_of('x'), None);
        assert_eq!(
            TelephoneEvent {
                event: 16,
                end: false,
                volume: 0,
                duration: 0
            }
            .digit(),
            None
        );
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), Err(DtmfError(3)));
    }
}
