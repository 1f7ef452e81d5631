//! The port allocator: even RTP ports with RTCP on the next one (RFC 3550
//! §11), or single rtcp-mux ports, taken in turn from a range.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Mutex;

use super::LegAddrs;

/// Hands out ports from a range. It walks the range in turn rather than
/// reusing the lowest free port, so a port just freed rests for a whole
/// cycle before it is used again and late packets of the old call do not
/// reach the new one. A port is free when it can be bound: another program
/// holding one is skipped, not an error.
#[derive(Debug)]
pub struct PortAllocator {
    address: IpAddr,
    first: u16,
    last: u16,
    /// The even port the next search starts at.
    next: Mutex<u16>,
}

/// The bound sockets of one leg.
#[derive(Debug)]
pub struct LegSockets {
    /// The RTP socket (RTCP too, with rtcp-mux).
    pub rtp: UdpSocket,
    /// The RTCP socket on the next port; `None` with rtcp-mux.
    pub rtcp: Option<UdpSocket>,
}

impl LegSockets {
    /// The addresses the sockets are bound to.
    pub fn addrs(&self) -> io::Result<LegAddrs> {
        let rtp = self.rtp.local_addr()?;
        let rtcp = match &self.rtcp {
            Some(rtcp) => rtcp.local_addr()?,
            None => rtp,
        };
        Ok(LegAddrs { rtp, rtcp })
    }
}

impl PortAllocator {
    /// An allocator for `first..=last` on `address`. The range must hold
    /// at least one even port with its successor.
    pub fn new(address: IpAddr, first: u16, last: u16) -> io::Result<PortAllocator> {
        let first = first.max(1).next_multiple_of(2);
        if first >= last {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the RTP port range holds no even port and its successor",
            ));
        }
        Ok(PortAllocator {
            address,
            first,
            last,
            next: Mutex::new(first),
        })
    }

    /// Binds the next free even port, and the one after it for RTCP unless
    /// `rtcp_mux`. Fails with `AddrInUse` when every pair is taken.
    pub fn allocate(&self, rtcp_mux: bool) -> io::Result<LegSockets> {
        let pairs = (self.last - self.first) / 2 + 1;
        for _ in 0..pairs {
            let port = self.take_next();
            let Ok(rtp) = bind(self.address, port) else {
                continue;
            };
            if rtcp_mux {
                return Ok(LegSockets { rtp, rtcp: None });
            }
            if let Ok(rtcp) = bind(self.address, port + 1) {
                return Ok(LegSockets {
                    rtp,
                    rtcp: Some(rtcp),
                });
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free port pair left in the RTP port range",
        ))
    }

    /// The even port to try now; moves the cursor on, wrapping at the end.
    fn take_next(&self) -> u16 {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let port = *next;
        *next = match port.checked_add(2) {
            Some(after) if after < self.last => after,
            _ => self.first,
        };
        port
    }
}

fn bind(address: IpAddr, port: u16) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddr::new(address, port))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}
