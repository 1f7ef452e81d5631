//! The recorder: RTP of both legs in, interleaved WAV frames out.
//!
//! Positions are frames (one sample per channel) since the recording's
//! start. Each leg has a ring of decoded samples covering the frames from
//! the write position (`flushed`) onwards; a slot is zeroed once written,
//! so whatever no packet fills is silence.
//!
//! hound writes the header; the frames are interleaved straight into a
//! write buffer as little-endian bytes, written a buffer at a time, and the
//! header's sizes are written at the end as hound writes them, so the file
//! is byte for byte hound's. (hound's 16-bit sample writer checks every
//! sample's room in its buffer: about 7 µs per call second, a fifth of the
//! whole; its unchecked one needs `unsafe`.)

use crate::{Error, SAMPLE_RATE, Side};
use hound::{SampleFormat, WavSpec, WavWriter};
use std::fs::{File, OpenOptions};
use std::io::{self, Cursor, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use trunkline_media::g711;
use trunkline_media::rtp::RtpPacket;

/// The longest payload taken, in samples (256 ms of G.711): longer than
/// any packetization time offered in practice, and it sizes the rings.
const MAX_PAYLOAD: usize = 2048;

/// The longest jitter window: it sizes the rings too.
const MAX_JITTER: Duration = Duration::from_secs(2);

/// Bytes buffered before a write system call (whole frames): one second
/// of audio, so a call second costs about one write, and a process that
/// dies loses at most that much besides the jitter window.
const WRITE_BUFFER: usize = 32 * 1024;

/// Bytes of one frame: two 16-bit samples.
const FRAME_BYTES: usize = 4;

/// Every recording's format.
const SPEC: WavSpec = WavSpec {
    channels: 2,
    sample_rate: SAMPLE_RATE,
    bits_per_sample: 16,
    sample_format: SampleFormat::Int,
};

/// The largest recording, in frames: a WAV file's sizes are 32-bit, and
/// hound's 16-bit stereo header is 44 bytes (36 counted in the RIFF size).
/// At 8 kHz that is about 37 hours.
const MAX_FRAMES: i64 = ((u32::MAX - 36) / 4) as i64;

/// Positions are clamped here so that no sum of them overflows, however
/// odd the times given.
const MAX_POSITION: i64 = 1 << 60;

/// How far behind the newest sequence number a packet may be and still be
/// taken for a reordered one (RFC 3550 A.1's `MAX_MISORDER`); further back
/// it starts a new sequence.
const MAX_MISORDER: u16 = 100;

/// How the recorder waits and resynchronizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderConfig {
    /// How long audio waits for late and reordered packets before it is
    /// written: a packet arriving later than this after the time its audio
    /// belongs to is dropped as late. Default 100 ms, at most 2 s.
    pub jitter: Duration,
    /// How far a leg's timestamps may disagree with its packets' arrival
    /// before the leg is placed by arrival again (a timestamp jump, a new
    /// SSRC, a hold during which timestamps stood still). Default 1 s; never
    /// less than `jitter`.
    pub resync: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            jitter: Duration::from_millis(100),
            resync: Duration::from_secs(1),
        }
    }
}

/// What the recorder needs of one RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMedia<'a> {
    /// The RTP timestamp (8 kHz for G.711).
    pub timestamp: u32,
    /// The RTP sequence number.
    pub sequence: u16,
    /// The payload type: 0 (PCMU) and 8 (PCMA) are recorded, others are
    /// counted in [`SideStats::ignored`].
    pub payload_type: u8,
    /// The payload, without padding.
    pub payload: &'a [u8],
}

/// What became of one leg's packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideStats {
    /// Audio packets placed in the recording.
    pub packets: u64,
    /// Their samples (a reordered packet straddling the write position
    /// contributes only its part after it).
    pub samples: u64,
    /// Packets of other payload types (RFC 4733 events, comfort noise, …):
    /// their time is silence.
    pub ignored: u64,
    /// Packets that arrived after their audio had been written.
    pub late: u64,
    /// Packets seen before.
    pub duplicates: u64,
    /// Packets that were not RTP, or whose payload was empty or longer than
    /// 2048 samples.
    pub malformed: u64,
    /// Times the leg was placed by arrival again because its timestamps
    /// jumped or its stream restarted.
    pub resyncs: u64,
}

impl SideStats {
    /// Packets dropped: late, duplicate or malformed.
    pub fn dropped(&self) -> u64 {
        self.late + self.duplicates + self.malformed
    }
}

/// A recording's length and what became of each leg's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Frames written (one sample per channel).
    pub frames: u64,
    /// Their duration at 8 kHz.
    pub duration: Duration,
    /// The caller's packets (left channel).
    pub caller: SideStats,
    /// The callee's packets (right channel).
    pub callee: SideStats,
    /// Frames past the largest WAV file (about 37 hours), not written.
    pub overflow_frames: u64,
}

/// One leg: its ring of samples and how its timestamps map to positions.
struct Track {
    ring: Box<[i16]>,
    started: bool,
    /// The timestamp and position of the newest packet in timestamp order:
    /// other timestamps are placed by their (wrapping) distance from it, so
    /// the 32-bit wrap needs no special case.
    anchor_ts: u32,
    anchor_pos: i64,
    /// Where that packet's audio ends.
    end: i64,
    /// The highest sequence number, and which of the 64 below it were seen
    /// (bit n: `high_seq - n`).
    high_seq: u16,
    seen: u64,
    stats: SideStats,
}

/// Where a sequence number stands against the ones seen.
enum Sequence {
    Newer,
    Seen,
    Older(u16),
}

impl Track {
    fn new(capacity: usize) -> Self {
        Track {
            ring: vec![0; capacity].into_boxed_slice(),
            started: false,
            anchor_ts: 0,
            anchor_pos: 0,
            end: 0,
            high_seq: 0,
            seen: 0,
            stats: SideStats::default(),
        }
    }

    /// Classifies `seq` and notes it as seen.
    fn sequence(&mut self, seq: u16) -> Sequence {
        let ahead = seq.wrapping_sub(self.high_seq) as i16;
        if ahead > 0 {
            let ahead = ahead.unsigned_abs();
            self.seen = if ahead < 64 {
                (self.seen << ahead) | 1
            } else {
                1
            };
            self.high_seq = seq;
            return Sequence::Newer;
        }
        let back = ahead.unsigned_abs();
        if back < 64 {
            let bit = 1u64 << back;
            let seen = self.seen & bit != 0;
            self.seen |= bit;
            if seen {
                return Sequence::Seen;
            }
        }
        Sequence::Older(back)
    }

    /// Where a packet of `len` samples arriving at `arrival` goes, or `None`
    /// when it is dropped. The position may lie before `flushed` when only
    /// the packet's tail is still open.
    fn place(
        &mut self,
        media: &RtpMedia<'_>,
        len: i64,
        arrival: i64,
        flushed: i64,
        resync: i64,
    ) -> Option<i64> {
        if !self.started {
            self.started = true;
            return Some(self.restart(media, len, arrival.max(flushed)));
        }
        let pos = self.anchor_pos + i64::from(media.timestamp.wrapping_sub(self.anchor_ts) as i32);
        let sequence = self.sequence(media.sequence);
        let in_order = pos >= self.end;
        let jumped = if in_order {
            // Ahead: beyond both this leg's audio and the wall clock by more
            // than silence suppression explains. Behind: timestamps that did
            // not advance with time (a hold), or a delay spike that long.
            (pos - self.end > resync && pos - arrival > resync) || arrival - pos > resync
        } else {
            // Timestamps went back while sequence numbers went on, or
            // sequence numbers far from the last: a restarted stream.
            matches!(sequence, Sequence::Newer)
                || matches!(sequence, Sequence::Older(back) if back > MAX_MISORDER)
        };
        if jumped {
            self.stats.resyncs += 1;
            // Continuing after this leg's own audio keeps a restart mid-
            // stream seamless; after a pause, its arrival places it.
            let at = arrival.max(flushed).max(self.end);
            return Some(self.restart(media, len, at));
        }
        if in_order {
            // A leg whose audio fell behind the write position (its clock
            // runs slow, or a delay shorter than `resync`) is pulled forward
            // rather than lost.
            let at = pos.max(flushed);
            self.anchor_ts = media.timestamp;
            self.anchor_pos = at;
            self.end = at + len;
            return Some(at);
        }
        if matches!(sequence, Sequence::Seen) {
            self.stats.duplicates += 1;
            return None;
        }
        if pos + len <= flushed {
            self.stats.late += 1;
            return None;
        }
        Some(pos)
    }

    /// Anchors the leg's timestamps at `at` and starts its sequence anew.
    fn restart(&mut self, media: &RtpMedia<'_>, len: i64, at: i64) -> i64 {
        self.anchor_ts = media.timestamp;
        self.anchor_pos = at;
        self.end = at + len;
        self.high_seq = media.sequence;
        self.seen = 1;
        at
    }
}

/// Records one call into a WAV file: 8 kHz, 16-bit, caller left, callee
/// right. See the crate documentation for how packets are placed.
///
/// Dropping a recorder without [`finish`](Recorder::finish) loses the
/// audio still waiting in the jitter window; what was written still gets
/// its sizes in the header.
pub struct Recorder {
    path: PathBuf,
    /// `None` once a write failed (the file is left as that write left it)
    /// or the recording is finished.
    output: Option<Output>,
    start: Instant,
    /// The jitter window and the resync distance, in frames.
    delay: i64,
    resync: i64,
    /// Ring length minus one (the length is a power of two).
    mask: usize,
    /// Frames before this position are in the file (or were past its limit).
    flushed: i64,
    tracks: [Track; 2],
    overflow: u64,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .field("flushed", &self.flushed)
            .field("stopped", &self.output.is_none())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts a recording at `path` (which must not exist yet) with the
    /// default [`RecorderConfig`]; `start` is time zero of the recording.
    pub fn create(path: impl AsRef<Path>, start: Instant) -> Result<Recorder, Error> {
        Recorder::with_config(path, start, RecorderConfig::default())
    }

    /// Starts a recording at `path` (which must not exist yet).
    pub fn with_config(
        path: impl AsRef<Path>,
        start: Instant,
        config: RecorderConfig,
    ) -> Result<Recorder, Error> {
        let path = path.as_ref().to_path_buf();
        let create = |source| Error::Create {
            path: path.clone(),
            source,
        };
        // Never over an earlier recording: that one would be lost.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(create)?;
        // The header reaches the file now, so a call cut off in its first
        // second still leaves a file that `repair` can fix.
        let output = Output::new(file).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        let delay = frames(config.jitter.min(MAX_JITTER));
        let resync = frames(config.resync).max(delay);
        // Whole packets within the jitter window, rounded up so a position
        // maps to its slot with a mask.
        let capacity = (delay as usize + MAX_PAYLOAD).next_power_of_two();
        Ok(Recorder {
            path,
            output: Some(output),
            start,
            delay,
            resync,
            mask: capacity - 1,
            flushed: 0,
            tracks: [Track::new(capacity), Track::new(capacity)],
            overflow: 0,
        })
    }

    /// Takes one RTP packet of `side` that arrived at `now`, then writes
    /// out what is older than the jitter window. Errors only when writing
    /// fails; odd packets are counted, never refused.
    pub fn push(&mut self, side: Side, now: Instant, media: RtpMedia<'_>) -> Result<(), Error> {
        let arrival = self.position(now)?;
        let decode: fn(&[u8], &mut [i16]) = match media.payload_type {
            0 => g711::ulaw_decode_slice,
            8 => g711::alaw_decode_slice,
            _ => {
                self.tracks[side.index()].stats.ignored += 1;
                return self.flush_to(arrival - self.delay);
            }
        };
        let len = media.payload.len();
        if len == 0 || len > MAX_PAYLOAD {
            self.tracks[side.index()].stats.malformed += 1;
            return self.flush_to(arrival - self.delay);
        }
        let track = &mut self.tracks[side.index()];
        if let Some(at) = track.place(&media, len as i64, arrival, self.flushed, self.resync) {
            // The rings hold frames from `flushed` on: a packet beyond them
            // pushes the write position on (never past its own start, as
            // a packet is shorter than a ring).
            let capacity = self.mask as i64 + 1;
            let end = at + len as i64;
            if end - self.flushed > capacity {
                self.flush_to(end - capacity)?;
            }
            let skip = (self.flushed - at).max(0) as usize;
            let track = &mut self.tracks[side.index()];
            decode_into(
                &mut track.ring,
                self.mask,
                at + skip as i64,
                &media.payload[skip..],
                decode,
            );
            track.stats.packets += 1;
            track.stats.samples += (len - skip) as u64;
        }
        self.flush_to(arrival - self.delay)
    }

    /// [`push`](Recorder::push) for a whole RTP packet as the relay's tap
    /// hands it over (a `Tapped`'s `packet`, with its `arrival` as `now`);
    /// bytes that are not RTP are counted as malformed.
    pub fn push_rtp(&mut self, side: Side, now: Instant, packet: &[u8]) -> Result<(), Error> {
        match RtpPacket::parse(packet) {
            Ok(packet) => {
                let media = RtpMedia {
                    timestamp: packet.timestamp(),
                    sequence: packet.sequence(),
                    payload_type: packet.payload_type(),
                    payload: packet.payload(),
                };
                self.push(side, now, media)
            }
            Err(_) => {
                self.tracks[side.index()].stats.malformed += 1;
                self.tick(now)
            }
        }
    }

    /// Writes out what is older than the jitter window at `now`, for when
    /// no packets come (both legs silent) and the file should keep up.
    pub fn tick(&mut self, now: Instant) -> Result<(), Error> {
        let arrival = self.position(now)?;
        self.flush_to(arrival - self.delay)
    }

    /// Frames waiting in the rings for late packets: at most the jitter
    /// window and a packet while the legs' timestamps keep to time,
    /// however long the call and whatever either leg does.
    pub fn buffered_frames(&self) -> u64 {
        let end = self.tracks.iter().map(|t| t.end).max().unwrap_or(0);
        (end - self.flushed).max(0) as u64
    }

    /// The recording so far.
    pub fn stats(&self) -> Summary {
        let frames = self.flushed.min(MAX_FRAMES) as u64;
        let rate = u64::from(SAMPLE_RATE);
        Summary {
            frames,
            duration: Duration::from_secs(frames / rate)
                + Duration::from_nanos(frames % rate * 1_000_000_000 / rate),
            caller: self.tracks[Side::Caller.index()].stats,
            callee: self.tracks[Side::Callee.index()].stats,
            overflow_frames: self.overflow,
        }
    }

    /// Ends the recording at `now` (or after the last audio, if that is
    /// later): writes everything buffered, silence up to the end, the
    /// header's sizes, and syncs the file to disk.
    pub fn finish(mut self, now: Instant) -> Result<Summary, Error> {
        let arrival = self.position(now)?;
        let end = self.tracks.iter().map(|t| t.end).fold(arrival, i64::max);
        self.flush_to(end)?;
        let output = self.output.take().ok_or_else(|| self.stopped())?;
        let summary = self.stats();
        output
            .finish(summary.frames)
            .map_err(|source| Error::Write {
                path: self.path.clone(),
                source,
            })?;
        Ok(summary)
    }

    fn stopped(&self) -> Error {
        Error::Stopped {
            path: self.path.clone(),
        }
    }

    /// `now` as a position, or the error of a stopped recorder.
    fn position(&self, now: Instant) -> Result<i64, Error> {
        if self.output.is_none() {
            return Err(self.stopped());
        }
        Ok(frames(now.saturating_duration_since(self.start)))
    }

    /// Writes frames up to `target`; a failed write stops the recorder.
    fn flush_to(&mut self, target: i64) -> Result<(), Error> {
        if target <= self.flushed {
            return Ok(());
        }
        let Some(output) = self.output.as_mut() else {
            return Err(self.stopped());
        };
        let [caller, callee] = &mut self.tracks;
        let written = output.write_frames(
            [&mut caller.ring[..], &mut callee.ring[..]],
            self.mask,
            &mut self.flushed,
            target,
        );
        if let Err(source) = written {
            self.output = None;
            return Err(Error::Write {
                path: self.path.clone(),
                source: source.into(),
            });
        }
        if target > self.flushed {
            // Past the largest WAV file: counted, and cleared from the rings
            // as if written.
            let beyond = target - self.flushed;
            self.overflow += beyond as u64;
            for track in &mut self.tracks {
                clear(&mut track.ring, self.mask, self.flushed, beyond);
            }
            self.flushed = target;
        }
        Ok(())
    }
}

impl Drop for Recorder {
    /// Writes what is buffered and the header's sizes for it, as hound
    /// does for a writer dropped unfinished; errors go unseen.
    fn drop(&mut self) {
        if let Some(output) = self.output.take() {
            let _ = output.close(self.stats().frames);
        }
    }
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Caller => 0,
            Side::Callee => 1,
        }
    }
}

/// A duration as frames, clamped to [`MAX_POSITION`].
fn frames(duration: Duration) -> i64 {
    let rate = u64::from(SAMPLE_RATE);
    let frames = duration
        .as_secs()
        .saturating_mul(rate)
        .saturating_add(u64::from(duration.subsec_nanos()) * rate / 1_000_000_000);
    frames.min(MAX_POSITION as u64) as i64
}

/// Decodes `codes` into the ring from position `at` on (`at` ≥ 0).
fn decode_into(
    ring: &mut [i16],
    mask: usize,
    at: i64,
    codes: &[u8],
    decode: fn(&[u8], &mut [i16]),
) {
    let start = at as usize & mask;
    let first = codes.len().min(ring.len() - start);
    decode(&codes[..first], &mut ring[start..start + first]);
    decode(&codes[first..], &mut ring[..codes.len() - first]);
}

/// Zeroes `count` slots of the ring from position `at` on.
fn clear(ring: &mut [i16], mask: usize, at: i64, count: i64) {
    if count >= ring.len() as i64 {
        ring.fill(0);
        return;
    }
    let start = at as usize & mask;
    let count = count as usize;
    let first = count.min(ring.len() - start);
    ring[start..start + first].fill(0);
    ring[..count - first].fill(0);
}

/// The file being written: hound's header, then the data chunk.
struct Output {
    file: File,
    /// Interleaved frames waiting for a write, as the file holds them.
    buffer: Box<[u8]>,
    /// The bytes of `buffer` in use.
    len: usize,
    /// The header's length: where the data starts, and just after the data
    /// chunk's size.
    header: u64,
}

impl Output {
    /// Writes hound's header, with sizes for no data, to `file`.
    fn new(mut file: File) -> Result<Output, hound::Error> {
        let mut header = Cursor::new(Vec::new());
        WavWriter::new(&mut header, SPEC)?.finalize()?;
        let header = header.into_inner();
        file.write_all(&header)?;
        Ok(Output {
            file,
            buffer: vec![0; WRITE_BUFFER].into_boxed_slice(),
            len: 0,
            header: header.len() as u64,
        })
    }

    /// Interleaves the rings' frames from `flushed` up to `target` (or the
    /// largest WAV file) into the buffer, zeroing the slots taken, and
    /// advances `flushed` past them; a full buffer is written out.
    fn write_frames(
        &mut self,
        [left, right]: [&mut [i16]; 2],
        mask: usize,
        flushed: &mut i64,
        target: i64,
    ) -> io::Result<()> {
        let target = target.min(MAX_FRAMES);
        while *flushed < target {
            let start = *flushed as usize & mask;
            let n = ((target - *flushed) as usize)
                .min(left.len() - start)
                .min((self.buffer.len() - self.len) / FRAME_BYTES);
            let (left, right) = (&mut left[start..start + n], &mut right[start..start + n]);
            let bytes = &mut self.buffer[self.len..self.len + FRAME_BYTES * n];
            for ((frame, l), r) in bytes.chunks_exact_mut(FRAME_BYTES).zip(&*left).zip(&*right) {
                let ([l0, l1], [r0, r1]) = (l.to_le_bytes(), r.to_le_bytes());
                frame.copy_from_slice(&[l0, l1, r0, r1]);
            }
            left.fill(0);
            right.fill(0);
            self.len += FRAME_BYTES * n;
            *flushed += n as i64;
            if self.len == self.buffer.len() {
                self.write_buffer()?;
            }
        }
        Ok(())
    }

    fn write_buffer(&mut self) -> io::Result<()> {
        let len = std::mem::take(&mut self.len);
        self.file.write_all(&self.buffer[..len])
    }

    /// Writes what is buffered, then the header's sizes for `frames`: the
    /// RIFF size first and the data size last, as hound does.
    fn close(mut self, frames: u64) -> io::Result<File> {
        self.write_buffer()?;
        let data = frames * FRAME_BYTES as u64;
        // Both fit: `frames` is at most `MAX_FRAMES`.
        let riff = u32::try_from(self.header - 8 + data).unwrap_or(u32::MAX);
        let data = u32::try_from(data).unwrap_or(u32::MAX);
        self.file.seek(SeekFrom::Start(4))?;
        self.file.write_all(&riff.to_le_bytes())?;
        self.file.seek(SeekFrom::Start(self.header - 4))?;
        self.file.write_all(&data.to_le_bytes())?;
        Ok(self.file)
    }

    /// [`close`](Output::close), then syncs the file to disk.
    fn finish(self, frames: u64) -> Result<(), hound::Error> {
        self.close(frames)?.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hounds_header_ends_with_the_data_size_at_44_bytes() {
        let mut header = Cursor::new(Vec::new());
        WavWriter::new(&mut header, SPEC)
            .expect("header")
            .finalize()
            .expect("finalize");
        let header = header.into_inner();
        // `MAX_FRAMES` and the sizes written at the end count on this.
        assert_eq!(header.len(), 44);
        assert_eq!(&header[..4], b"RIFF");
        assert_eq!(&header[4..8], &36u32.to_le_bytes());
        assert_eq!(&header[36..], b"data\0\0\0\0");
    }
}
