//! Load on the RTP relay over loopback: N concurrent calls, each a
//! G.711-shaped stream both ways (50 packets a second, 172-byte payload),
//! through one relay in this process. Reports the relay's CPU time per
//! relayed call-second (its worker threads' user + system time from
//! `/proc`), loss, and the added latency's percentiles, with a progress
//! line every second.
//!
//! ```text
//! cargo bench -p trunkline-media --bench relay_load -- [--calls N[,N...]] [--seconds S] [--workers W]
//! ```
//!
//! Defaults: `--calls 1000,5000 --seconds 10 --workers 1`. Both legs of
//! every session use rtcp-mux, so 5,000 calls need 10,000 sockets.
//!
//! `--floor` puts a bare forwarder in the relay's place: the same sockets,
//! event loop and batched reads, but no parsing, latching, statistics or
//! SRTP. What it costs is the kernel's part of relaying on this machine,
//! the floor under any relay built on UDP sockets here.
//!
//! The generator uses two sockets, one for all the callers and one for all
//! the callees; a packet carries its call, direction and send time, so the
//! receiving side knows what arrived and how long it took. Sending is
//! paced by a 1 ms clock, each call on its own phase of the 20 ms cycle.

use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};
use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trunkline_media::relay::{Leg, Relay, RelayConfig, Session, SessionOptions};
use trunkline_media::rtp::RtpHeader;

const PACKET_INTERVAL: Duration = Duration::from_millis(20);
const PAYLOAD: usize = 172;
/// Latency histogram: 10 µs buckets up to 100 ms.
const BUCKET_US: u64 = 10;
const BUCKETS: usize = 10_000;

struct Options {
    calls: Vec<usize>,
    seconds: u64,
    workers: usize,
    floor: bool,
}

fn options() -> Options {
    let mut options = Options {
        calls: vec![1000, 5000],
        seconds: 10,
        workers: 1,
        floor: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--calls" => {
                options.calls = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|n| n.parse().ok())
                    .collect();
            }
            "--seconds" => options.seconds = parse(args.next()),
            "--workers" => options.workers = parse(args.next()),
            "--floor" => options.floor = true,
            // `cargo bench` passes `--bench`; nothing else is ours.
            _ => {}
        }
    }
    options
}

fn parse<T: std::str::FromStr + Default>(value: Option<String>) -> T {
    value.and_then(|v| v.parse().ok()).unwrap_or_default()
}

/// What one receiving side saw.
struct Received {
    packets: AtomicU64,
    histogram: Mutex<Vec<u64>>,
}

fn main() {
    let options = options();
    for &calls in &options.calls {
        run(calls, options.seconds, options.workers, options.floor);
    }
}

/// What stands between the generator's two sockets.
enum Forwarder {
    Relay {
        relay: Relay,
        _sessions: Vec<Session>,
    },
    Floor(Floor),
}

impl Forwarder {
    /// Packets relayed and packets dropped so far.
    fn counts(&self) -> (u64, u64) {
        match self {
            Forwarder::Relay { relay, .. } => {
                let stats = relay.stats();
                (stats.relayed, stats.dropped)
            }
            Forwarder::Floor(floor) => (floor.relayed.load(Ordering::Relaxed), 0),
        }
    }
}

fn run(calls: usize, seconds: u64, workers: usize, floor: bool) {
    let what = if floor {
        "the bare forwarder (--floor), one thread".to_owned()
    } else {
        format!("the relay, {workers} worker(s)")
    };
    println!("relay_load: {calls} calls through {what}, {seconds} s");
    let callers = generator_socket();
    let callees = generator_socket();
    let caller_addr = callers.local_addr().expect("address");
    let callee_addr = callees.local_addr().expect("address");
    let (forwarder, targets) = if floor {
        let floor = Floor::start(calls, [callee_addr, caller_addr]);
        let targets = floor.targets.clone();
        (Forwarder::Floor(floor), targets)
    } else {
        let (relay, _events) = Relay::start(RelayConfig {
            ports: (20000, 60999),
            workers,
            inactivity_timeout: Duration::from_secs(3600),
            ..RelayConfig::default()
        })
        .expect("relay");
        let mux = SessionOptions {
            rtcp_mux_a: true,
            rtcp_mux_b: true,
        };
        let sessions: Vec<Session> = (0..calls)
            .map(|_| {
                let session = relay.open(mux).expect("ports");
                session.set_remote(Leg::B, callee_addr, callee_addr);
                session
            })
            .collect();
        let targets: Vec<[SocketAddr; 2]> = sessions
            .iter()
            .map(|s| [s.local(Leg::A).rtp, s.local(Leg::B).rtp])
            .collect();
        let forwarder = Forwarder::Relay {
            relay,
            _sessions: sessions,
        };
        (forwarder, targets)
    };

    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(Received {
        packets: AtomicU64::new(0),
        histogram: Mutex::new(vec![0; BUCKETS + 1]),
    });
    let receiver = {
        let sockets = [
            callers.try_clone().expect("socket"),
            callees.try_clone().expect("socket"),
        ];
        let (received, stop) = (received.clone(), stop.clone());
        std::thread::spawn(move || receive(sockets, &received, &stop, epoch))
    };

    let sent = Arc::new(AtomicU64::new(0));
    let send_failed = Arc::new(AtomicU64::new(0));
    let sender = {
        let (callers, callees) = (
            callers.try_clone().expect("socket"),
            callees.try_clone().expect("socket"),
        );
        let (sent, send_failed, stop) = (sent.clone(), send_failed.clone(), stop.clone());
        std::thread::spawn(move || {
            send(
                [&callers, &callees],
                &targets,
                &sent,
                &send_failed,
                &stop,
                epoch,
            );
        })
    };

    let cpu_start = relay_cpu();
    let mut last = (Instant::now(), cpu_start, 0u64);
    for second in 1..=seconds {
        std::thread::sleep(Duration::from_secs(1));
        let (now, cpu) = (Instant::now(), relay_cpu());
        let out = sent.load(Ordering::Relaxed);
        let got = received.packets.load(Ordering::Relaxed);
        let (relayed, _) = forwarder.counts();
        let wall = now - last.0;
        let per_call_second = (cpu - last.1).as_secs_f64() * 1e6
            / (call_seconds(relayed - last.2)).max(f64::MIN_POSITIVE);
        println!(
            "  {second:>3} s: sent {out} received {got} ({} in flight or lost), {:.0} packets/s relayed, relay CPU {:.1} µs per relayed call-second, send failures {}",
            out.saturating_sub(got),
            (relayed - last.2) as f64 / wall.as_secs_f64(),
            per_call_second,
            send_failed.load(Ordering::Relaxed),
        );
        last = (now, cpu, relayed);
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("sender");
    let cpu = relay_cpu() - cpu_start;
    let elapsed = epoch.elapsed();
    // Let what is in flight arrive.
    std::thread::sleep(Duration::from_millis(200));
    let out = sent.load(Ordering::Relaxed);
    receiver.join().expect("receiver");
    let got = received.packets.load(Ordering::Relaxed);
    let histogram = received
        .histogram
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let (relayed, dropped) = forwarder.counts();
    println!(
        "relay_load: {calls} calls: {:.0} of {} packets/s offered, relay CPU {:.1} µs per relayed call-second \
         ({:.2} s CPU for {:.0} call-seconds over {:.1} s), \
         sent {out}, received {got}, lost {} ({:.4}%), relay dropped {}, send failures {}, \
         added latency p50 {} µs p99 {} µs p99.9 {} µs max {} µs",
        out as f64 / elapsed.as_secs_f64(),
        calls * 2 * 50,
        cpu.as_secs_f64() * 1e6 / call_seconds(relayed).max(f64::MIN_POSITIVE),
        cpu.as_secs_f64(),
        call_seconds(relayed),
        elapsed.as_secs_f64(),
        out.saturating_sub(got),
        out.saturating_sub(got) as f64 * 100.0 / out.max(1) as f64,
        dropped,
        send_failed.load(Ordering::Relaxed),
        percentile(&histogram, 0.50),
        percentile(&histogram, 0.99),
        percentile(&histogram, 0.999),
        max(&histogram),
    );
    if let Forwarder::Floor(floor) = forwarder {
        floor.stop();
    }
}

/// The bare forwarder of `--floor`: per call two sockets, one thread with
/// a `mio` loop reading each ready socket with `recvmmsg` (quinn-udp, as
/// the relay does) and sending each datagram from the call's other socket
/// to a fixed destination. Everything the relay does beyond that is left
/// out, so its CPU time is what the kernel charges for the traffic.
struct Floor {
    /// The leg A and leg B sockets' addresses, per call.
    targets: Vec<[SocketAddr; 2]>,
    relayed: Arc<AtomicU64>,
    waker: Arc<mio::Waker>,
    thread: std::thread::JoinHandle<()>,
}

/// The token that stops the bare forwarder.
const FLOOR_STOP: mio::Token = mio::Token(usize::MAX);

impl Floor {
    /// `destinations[leg]`: where what arrives on that leg goes (from the
    /// other leg's socket).
    fn start(calls: usize, destinations: [SocketAddr; 2]) -> Floor {
        let poll = mio::Poll::new().expect("poll");
        let waker = Arc::new(mio::Waker::new(poll.registry(), FLOOR_STOP).expect("waker"));
        let mut sockets: Vec<mio::net::UdpSocket> = (0..calls * 2)
            .map(|_| {
                mio::net::UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind")
            })
            .collect();
        for (n, socket) in sockets.iter_mut().enumerate() {
            poll.registry()
                .register(socket, mio::Token(n), mio::Interest::READABLE)
                .expect("register");
        }
        let targets = sockets
            .chunks(2)
            .map(|pair| [0, 1].map(|leg| pair[leg].local_addr().expect("address")))
            .collect();
        let relayed = Arc::new(AtomicU64::new(0));
        let counter = relayed.clone();
        let thread = std::thread::Builder::new()
            .name("rtp-relay-floor".into())
            .spawn(move || forward(poll, &sockets, destinations, &counter))
            .expect("thread");
        Floor {
            targets,
            relayed,
            waker,
            thread,
        }
    }

    fn stop(self) {
        self.waker.wake().expect("wake");
        self.thread.join().expect("forwarder");
    }
}

fn forward(
    mut poll: mio::Poll,
    sockets: &[mio::net::UdpSocket],
    destinations: [SocketAddr; 2],
    relayed: &AtomicU64,
) {
    let state = UdpSocketState::new(UdpSockRef::from(&sockets[0])).expect("socket state");
    let mut slots = [[0u8; 2048]; quinn_udp::BATCH_SIZE];
    let mut meta = [RecvMeta::default(); quinn_udp::BATCH_SIZE];
    let mut events = mio::Events::with_capacity(1024);
    let mut count = 0;
    loop {
        if poll.poll(&mut events, None).is_err() {
            continue;
        }
        for event in &events {
            if event.token() == FLOOR_STOP {
                return;
            }
            let n = event.token().0;
            let (socket, other) = (&sockets[n], &sockets[n ^ 1]);
            loop {
                // As in the relay, nothing is allocated per read.
                let mut slices = slots.each_mut().map(|s| IoSliceMut::new(s));
                let Ok(received) = state.recv(UdpSockRef::from(socket), &mut slices, &mut meta)
                else {
                    break;
                };
                for (slot, meta) in slots.iter().zip(&meta).take(received) {
                    if other
                        .send_to(&slot[..meta.len], destinations[n % 2])
                        .is_ok()
                    {
                        count += 1;
                    }
                }
                relayed.store(count, Ordering::Relaxed);
                // As the relay does: fewer than a batch means drained.
                if received < quinn_udp::BATCH_SIZE {
                    break;
                }
            }
        }
    }
}

/// A generator socket with room for bursts.
fn generator_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let state = UdpSocketState::new(UdpSockRef::from(&socket)).expect("socket state");
    let _ = state.set_recv_buffer_size(UdpSockRef::from(&socket), 8 << 20);
    let _ = state.set_send_buffer_size(UdpSockRef::from(&socket), 8 << 20);
    socket
}

/// Paces every call's two streams: each call sends on its own millisecond
/// of the 20 ms cycle.
fn send(
    sockets: [&UdpSocket; 2],
    targets: &[[SocketAddr; 2]],
    sent: &AtomicU64,
    failed: &AtomicU64,
    stop: &AtomicBool,
    epoch: Instant,
) {
    let slots = PACKET_INTERVAL.as_millis() as usize;
    let mut packet = [0u8; 12 + PAYLOAD];
    let mut tick = 0u64;
    let mut sequence = 0u16;
    while !stop.load(Ordering::Relaxed) {
        let due = epoch + Duration::from_millis(tick);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let slot = (tick % slots as u64) as usize;
        if slot == 0 {
            sequence = sequence.wrapping_add(1);
        }
        for (call, pair) in targets.iter().enumerate().skip(slot).step_by(slots) {
            for (direction, (socket, target)) in sockets.iter().zip(pair).enumerate() {
                let header = RtpHeader {
                    payload_type: 8,
                    sequence,
                    timestamp: u32::from(sequence) * 160,
                    ssrc: (call * 2 + direction) as u32,
                    ..Default::default()
                };
                // The payload starts with the send time, in ns since the
                // epoch: the receiver's latency reading.
                let mut payload = [0x55u8; PAYLOAD];
                let stamp = epoch.elapsed().as_nanos() as u64;
                payload[..8].copy_from_slice(&stamp.to_be_bytes());
                let len = header.write(&payload, &mut packet).expect("fits");
                match socket.send_to(&packet[..len], target) {
                    Ok(_) => sent.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }
        tick += 1;
    }
}

/// Call-seconds in `packets` relayed packets: a call is two streams of 50
/// packets a second.
fn call_seconds(packets: u64) -> f64 {
    packets as f64 / 100.0
}

/// How long the receiver sleeps once both sockets are drained.
const RECEIVE_POLL: Duration = Duration::from_micros(100);

/// Counts what arrives on both sockets and how late, with batched reads.
/// It polls on a timer rather than waiting on the sockets: a receiver
/// waiting on a socket must be woken for each packet, and on loopback that
/// wake-up (an interrupt to the other core, costly in a VM) is charged to
/// the sender — the relay — where a network card would have taken the
/// packet without it. Nor does it spin: on two cores a spinning receiver
/// takes the CPU the relay needs, and the relay's packets then wait for a
/// time slice. A packet may wait up to the poll interval to be read, which
/// the latency figures include.
fn receive(sockets: [UdpSocket; 2], received: &Received, stop: &AtomicBool, epoch: Instant) {
    let state = UdpSocketState::new(UdpSockRef::from(&sockets[0])).expect("socket state");
    for socket in &sockets {
        socket.set_nonblocking(true).expect("nonblocking");
    }
    let mut slots = vec![[0u8; 2048]; quinn_udp::BATCH_SIZE];
    let mut meta = vec![RecvMeta::default(); quinn_udp::BATCH_SIZE];
    let mut histogram = vec![0u64; BUCKETS + 1];
    let mut count = 0;
    let mut finishing: Option<Instant> = None;
    loop {
        if finishing.is_none() && stop.load(Ordering::Relaxed) {
            finishing = Some(Instant::now());
        }
        if finishing.is_some_and(|f| f.elapsed() > Duration::from_millis(150)) {
            break;
        }
        let mut drained = true;
        for socket in &sockets {
            let mut slices: Vec<IoSliceMut<'_>> =
                slots.iter_mut().map(|s| IoSliceMut::new(s)).collect();
            let Ok(n) = state.recv(UdpSockRef::from(socket), &mut slices, &mut meta) else {
                continue;
            };
            drained &= n < quinn_udp::BATCH_SIZE;
            let now = epoch.elapsed().as_nanos() as u64;
            for (slot, meta) in slots.iter().zip(&meta).take(n) {
                for datagram in slot[..meta.len].chunks(meta.stride.max(1)) {
                    let Some(stamp) = datagram.get(12..20) else {
                        continue;
                    };
                    let stamp = u64::from_be_bytes(stamp.try_into().unwrap_or_default());
                    let micros = now.saturating_sub(stamp) / 1000;
                    histogram[((micros / BUCKET_US) as usize).min(BUCKETS)] += 1;
                    count += 1;
                }
            }
            received.packets.store(count, Ordering::Relaxed);
        }
        if drained {
            std::thread::sleep(RECEIVE_POLL);
        }
    }
    *received.histogram.lock().unwrap_or_else(|p| p.into_inner()) = histogram;
}

fn percentile(histogram: &[u64], fraction: f64) -> u64 {
    let total: u64 = histogram.iter().sum();
    let wanted = (total as f64 * fraction).ceil() as u64;
    let mut seen = 0;
    for (bucket, n) in histogram.iter().enumerate() {
        seen += n;
        if seen >= wanted {
            return (bucket as u64 + 1) * BUCKET_US;
        }
    }
    BUCKETS as u64 * BUCKET_US
}

fn max(histogram: &[u64]) -> u64 {
    histogram
        .iter()
        .rposition(|n| *n > 0)
        .map_or(0, |bucket| (bucket as u64 + 1) * BUCKET_US)
}

/// User + system time of the relay's worker threads so far, from
/// `/proc/self/task/*/stat` (clock ticks of 10 ms).
fn relay_cpu() -> Duration {
    let mut ticks = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("rtp-relay-") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis: state is the
        // 3rd field, utime the 14th and stime the 15th.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| {
            fields
                .get(n - 3)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ticks += field(14) + field(15);
    }
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}
