//! Interoperability with libsrtp 2, the C library most SIP phones and
//! PBXs use: for each suite, what we protect libsrtp unprotects to the
//! original (and refuses tampered with), and what libsrtp protects we
//! unprotect, RTP across the sequence number wrap and SRTCP. The libsrtp
//! side is a small C program (`tests/libsrtp/harness.c`) built here with
//! `cc` against `-lsrtp2` (Debian `libsrtp2-dev`); without them the test
//! fails and says so.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use trunkline_media::rtcp::{Sdes, SenderReport};
use trunkline_media::rtp::RtpHeader;
use trunkline_media::sdes::Suite;
use trunkline_media::srtp::SrtpContext;
use trunkline_testkit::Reaped;

const SUITES: [Suite; 4] = [
    Suite::AesCm128HmacSha1_80,
    Suite::AesCm128HmacSha1_32,
    Suite::AeadAes128Gcm,
    Suite::AeadAes256Gcm,
];

/// How long building the harness, or one run of it, may take.
const LIMIT: Duration = Duration::from_secs(60);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Builds the harness once per test process and returns its path.
fn harness() -> &'static Path {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/libsrtp/harness.c");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Built under a name of this process's, then renamed into place:
        // test processes running at once do not write the same file.
        let building = dir.join(format!("libsrtp-harness.{}", std::process::id()));
        let mut cc = Command::new("cc");
        cc.arg("-O1")
            .arg("-o")
            .arg(&building)
            .arg(&source)
            .arg("-lsrtp2")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut build = match cc.spawn() {
            Ok(child) => Reaped(child),
            Err(e) => panic!(
                "this test builds a libsrtp harness with `cc`, which did not start ({e}): \
                 install a C compiler and libsrtp 2 (Debian: `apt-get install gcc libsrtp2-dev`)"
            ),
        };
        let code = build.exit_code(LIMIT);
        // Killed if it overran, so reading what it said cannot hang.
        let _ = build.0.kill();
        let mut errors = String::new();
        if let Some(mut stderr) = build.0.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut errors);
        }
        assert!(
            code == Some(0),
            "building the libsrtp harness failed ({code:?}); libsrtp 2's headers and library \
             are needed (Debian: `apt-get install libsrtp2-dev`):\n{errors}"
        );
        let exe = dir.join("libsrtp-harness");
        std::fs::rename(&building, &exe).unwrap();
        exe
    })
}

/// Runs the harness for `suite` on `ops` (operation, packet) and returns
/// each answer: the packet it gives back, or libsrtp's error code.
fn libsrtp(
    suite: Suite,
    key_and_salt: &[u8],
    ops: &[(&str, Vec<u8>)],
) -> Vec<Result<Vec<u8>, i32>> {
    let mut child = Reaped::spawn(
        Command::new(harness())
            .arg(suite.name())
            .arg(hex(key_and_salt))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    );
    // Writing and reading on threads of their own: neither pipe can fill
    // and stall the other, and a harness that hangs is caught by the
    // time limits below.
    let mut stdin = child.0.stdin.take().unwrap();
    let input: String = ops
        .iter()
        .map(|(op, packet)| format!("{op} {}\n", hex(packet)))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let stdout = child.0.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut answers = Vec::new();
    for (op, _) in ops {
        let line = lines
            .recv_timeout(LIMIT)
            .unwrap_or_else(|e| panic!("no answer from the libsrtp harness to {op}: {e}"))
            .unwrap();
        answers.push(match line.split_once(' ') {
            Some(("ok", packet)) => Ok(unhex(packet)),
            Some(("err", code)) => Err(code.parse().unwrap()),
            _ => panic!("the libsrtp harness said {line:?}"),
        });
    }
    writer.join().unwrap().unwrap();
    assert_eq!(
        child.exit_code(LIMIT),
        Some(0),
        "the libsrtp harness's exit"
    );
    answers
}

/// RTP packets of one source from sequence number 65 530 across the wrap
/// (the rollover counter goes to 1), with payloads of several sizes, one
/// with CSRCs and a header extension.
fn rtp_packets() -> Vec<Vec<u8>> {
    (0..14u16)
        .map(|n| {
            let seq = 65_530u16.wrapping_add(n);
            let payload: Vec<u8> = (0..[160, 1, 17, 33, 64, 200][usize::from(n) % 6])
                .map(|i| (i as u8) ^ (n as u8).wrapping_mul(31))
                .collect();
            let extension = [0x10, 0xab, 0, 0];
            let header = RtpHeader {
                payload_type: 0,
                sequence: seq,
                timestamp: 160 * u32::from(n),
                ssrc: 0x1234_5678,
                csrcs: if n == 3 { &[7, 8] } else { &[] },
                extension: (n == 3).then_some((0xBEDE, &extension[..])),
                ..RtpHeader::default()
            };
            let mut buf = vec![0u8; 12 + 8 + 8 + payload.len()];
            let len = header.write(&payload, &mut buf).unwrap();
            buf.truncate(len);
            buf
        })
        .collect()
}

/// Compound RTCP packets: a sender report with an SDES CNAME after it.
fn rtcp_packets() -> Vec<Vec<u8>> {
    (0..5u32)
        .map(|n| {
            let mut buf = vec![0u8; 256];
            let ntp = 0xe000_0000_0000_0000 | u64::from(n);
            let mut len =
                SenderReport::write(0x1234_5678, ntp, 160 * n, n, 160 * n, &[], &mut buf).unwrap();
            len += Sdes::write_cname(0x1234_5678, b"trunkline@127.0.0.1", &mut buf[len..]).unwrap();
            buf.truncate(len);
            buf
        })
        .collect()
}

fn key_and_salt(suite: Suite) -> (Vec<u8>, Vec<u8>) {
    let key = (0..suite.key_len() as u8)
        .map(|n| n.wrapping_mul(7) ^ 0x5a)
        .collect();
    let salt = (0..suite.salt_len() as u8)
        .map(|n| n.wrapping_mul(13) ^ 0xa5)
        .collect();
    (key, salt)
}

fn context(suite: Suite) -> SrtpContext {
    let (key, salt) = key_and_salt(suite);
    SrtpContext::new(suite, &key, &salt).unwrap()
}

#[test]
fn libsrtp_unprotects_what_we_protect_and_we_unprotect_what_it_protects() {
    for suite in SUITES {
        let (key, salt) = key_and_salt(suite);
        let master = [key.as_slice(), salt.as_slice()].concat();
        let (rtp, rtcp) = (rtp_packets(), rtcp_packets());

        // Ours, protected.
        let mut sender = context(suite);
        let mut ours = Vec::new();
        for packet in &rtp {
            let mut buf = [packet.as_slice(), &[0; 16]].concat();
            let n = sender.protect_rtp(&mut buf, packet.len()).unwrap();
            ours.push(("unprotect-rtp", buf[..n].to_vec()));
        }
        for packet in &rtcp {
            let mut buf = [packet.as_slice(), &[0; 20]].concat();
            let n = sender.protect_rtcp(&mut buf, packet.len()).unwrap();
            ours.push(("unprotect-rtcp", buf[..n].to_vec()));
        }
        // libsrtp's, protected from the same packets.
        let theirs: Vec<_> = rtp
            .iter()
            .map(|p| ("protect-rtp", p.clone()))
            .chain(rtcp.iter().map(|p| ("protect-rtcp", p.clone())))
            .collect();
        let originals: Vec<&Vec<u8>> = rtp.iter().chain(&rtcp).collect();

        // libsrtp unprotects ours to the originals.
        let answers = libsrtp(suite, &master, &ours);
        for (n, (answer, original)) in answers.iter().zip(&originals).enumerate() {
            assert_eq!(
                answer.as_ref(),
                Ok(*original),
                "{suite:?}: libsrtp unprotecting our packet {n}"
            );
        }

        // We unprotect libsrtp's to the originals. SRTP is deterministic,
        // so its RTP bytes are ours too; its SRTCP differs, as its first
        // SRTCP index is 1 where RFC 3711 §3.4 (and we) start at 0.
        let answers = libsrtp(suite, &master, &theirs);
        let mut receiver = context(suite);
        for (n, (answer, original)) in answers.into_iter().zip(&originals).enumerate() {
            let mut protected = answer.unwrap_or_else(|code| {
                panic!("{suite:?}: libsrtp protecting packet {n}: error {code}")
            });
            if n < rtp.len() {
                assert_eq!(
                    protected, ours[n].1,
                    "{suite:?}: the same SRTP bytes for packet {n}"
                );
            }
            let len = if n < rtp.len() {
                receiver.unprotect_rtp(&mut protected)
            } else {
                receiver.unprotect_rtcp(&mut protected)
            }
            .unwrap_or_else(|e| panic!("{suite:?}: unprotecting libsrtp's packet {n}: {e}"));
            assert_eq!(
                &protected[..len],
                original.as_slice(),
                "{suite:?}: packet {n}"
            );
        }
    }
}

#[test]
fn libsrtp_refuses_our_packets_tampered_with() {
    // Our tags are checked, not merely present: a bit flipped anywhere
    // makes libsrtp refuse the packet (srtp_err_status_auth_fail, 7).
    for suite in SUITES {
        let (key, salt) = key_and_salt(suite);
        let master = [key.as_slice(), salt.as_slice()].concat();
        let mut sender = context(suite);
        let packet = &rtp_packets()[0];
        let mut buf = [packet.as_slice(), &[0; 16]].concat();
        let n = sender.protect_rtp(&mut buf, packet.len()).unwrap();
        let ops: Vec<_> = [5, 20, n - 1]
            .into_iter()
            .map(|at| {
                let mut tampered = buf[..n].to_vec();
                tampered[at] ^= 0x10;
                ("unprotect-rtp", tampered)
            })
            .collect();
        for answer in libsrtp(suite, &master, &ops) {
            assert_eq!(answer, Err(7), "{suite:?}");
        }
    }
}
