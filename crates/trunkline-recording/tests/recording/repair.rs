//! Recordings cut off by a crash are repaired, and nothing else is touched.

use crate::common::{callee_tone, caller_tone};
use std::path::{Path, PathBuf};
use std::time::Instant;
use trunkline_recording::{Error, Recorder, Repair, repair, repair_dir};

/// Three seconds of both tones into `path`, not finished.
fn three_seconds(path: &Path) -> Recorder {
    let (caller, callee) = (caller_tone(), callee_tone());
    let start = Instant::now();
    let mut recorder = Recorder::create(path, start).expect("create");
    for n in 0..150 {
        caller.packet(n).push(&mut recorder, start);
        callee.packet(n).push(&mut recorder, start);
    }
    recorder
}

/// Finishes a recording: what is still buffered is written, no more.
fn finish(recorder: Recorder) {
    recorder.finish(Instant::now()).expect("finish");
}

/// The same three seconds, finished: what every repaired file must be a
/// prefix of.
fn reference(dir: &Path) -> (PathBuf, Vec<i16>) {
    let path = dir.join("reference.wav");
    let recorder = three_seconds(&path);
    finish(recorder);
    let samples = samples(&path);
    (path, samples)
}

fn samples(path: &Path) -> Vec<i16> {
    hound::WavReader::open(path)
        .expect("open WAV")
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("samples")
}

fn duration(path: &Path) -> u32 {
    hound::WavReader::open(path).expect("open WAV").duration()
}

/// Checks that the file at `path` reads as the first `frames` frames of
/// the reference.
fn is_prefix(path: &Path, frames: u64, reference: &[i16]) {
    assert_eq!(u64::from(duration(path)), frames);
    let samples = samples(path);
    assert_eq!(samples.len() as u64, 2 * frames);
    assert_eq!(samples[..], reference[..samples.len()]);
}

#[test]
fn a_recording_cut_off_by_a_crash_is_repaired() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (_, reference) = reference(dir.path());
    let path = dir.path().join("crashed.wav");
    // A crash: nothing runs after the last packet, not even destructors.
    std::mem::forget(three_seconds(&path));

    let len = std::fs::metadata(&path).expect("metadata").len();
    assert!(len > 44 + 4 * 8000, "a second or more reached the file");
    // Unrepaired, the header says the file is empty.
    assert_eq!(duration(&path), 0);

    let frames = (len - 44) / 4;
    assert_eq!(
        repair(&path).expect("repair"),
        Repair::Fixed { frames, trimmed: 0 }
    );
    is_prefix(&path, frames, &reference);
    assert_eq!(repair(&path).expect("repair"), Repair::Intact);
}

#[test]
fn a_recorder_dropped_unfinished_leaves_what_it_wrote_readable() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (_, reference) = reference(dir.path());
    let path = dir.path().join("dropped.wav");
    let recorder = three_seconds(&path);
    let frames = recorder.stats().frames;
    drop(recorder);
    // Up to the jitter window before the last packet (at 2.98 s), with
    // its sizes: nothing to repair.
    assert_eq!(frames, 8 * (2980 - 100));
    assert_eq!(repair(&path).expect("repair"), Repair::Intact);
    is_prefix(&path, frames, &reference);
}

#[test]
fn a_crash_before_any_audio_leaves_an_empty_recording() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("early.wav");
    std::mem::forget(Recorder::create(&path, Instant::now()).expect("create"));
    // The header was written as the recording began.
    assert_eq!(std::fs::metadata(&path).expect("metadata").len(), 44);
    assert_eq!(repair(&path).expect("repair"), Repair::Intact);
    assert_eq!(duration(&path), 0);
}

#[test]
fn a_copy_taken_while_recording_is_repaired() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (_, reference) = reference(dir.path());
    let path = dir.path().join("live.wav");
    let recorder = three_seconds(&path);
    let copy = dir.path().join("copy.wav");
    std::fs::copy(&path, &copy).expect("copy");
    finish(recorder);

    let len = std::fs::metadata(&copy).expect("metadata").len();
    let frames = (len - 44) / 4;
    assert!(frames > 0);
    assert!(matches!(
        repair(&copy).expect("repair"),
        Repair::Fixed { frames: f, .. } if f == frames
    ));
    is_prefix(&copy, frames, &reference);
}

#[test]
fn a_finished_recording_cut_anywhere_is_repaired() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (path, reference) = reference(dir.path());
    let bytes = std::fs::read(&path).expect("read");
    // Its header now claims more than the file holds.
    for cut in [
        44,
        45,
        46,
        47,
        44 + 4 * 1000 + 1,
        44 + 4 * 1000 + 3,
        44 + 4 * 8000,
    ] {
        let copy = dir.path().join(format!("cut-{cut}.wav"));
        std::fs::write(&copy, &bytes[..cut]).expect("write");
        let frames = (cut as u64 - 44) / 4;
        let trimmed = (cut as u64 - 44) % 4;
        assert_eq!(
            repair(&copy).expect("repair"),
            Repair::Fixed { frames, trimmed },
            "cut at {cut}"
        );
        assert_eq!(
            std::fs::metadata(&copy).expect("metadata").len(),
            44 + 4 * frames
        );
        is_prefix(&copy, frames, &reference);
    }
    // Cut inside the header, there is nothing to repair from.
    for cut in [0, 11, 30, 40] {
        let copy = dir.path().join(format!("cut-{cut}.wav"));
        std::fs::write(&copy, &bytes[..cut]).expect("write");
        let err = repair(&copy).expect_err("no header");
        assert!(matches!(err, Error::NotWav { .. }), "cut at {cut}: {err}");
        assert_eq!(std::fs::read(&copy).expect("read"), &bytes[..cut]);
    }
}

#[test]
fn a_finished_recording_is_left_alone() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (path, _) = reference(dir.path());
    let before = std::fs::read(&path).expect("read");
    assert_eq!(repair(&path).expect("repair"), Repair::Intact);
    assert_eq!(std::fs::read(&path).expect("read"), before);
}

#[test]
fn a_header_torn_between_its_two_sizes_is_repaired() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (path, reference) = reference(dir.path());
    let mut bytes = std::fs::read(&path).expect("read");
    // The RIFF size made it to disk, the data size did not.
    bytes[40..44].copy_from_slice(&[0; 4]);
    std::fs::write(&path, &bytes).expect("write");
    let frames = (bytes.len() as u64 - 44) / 4;
    assert_eq!(
        repair(&path).expect("repair"),
        Repair::Fixed { frames, trimmed: 0 }
    );
    is_prefix(&path, frames, &reference);
}

#[test]
fn cut_off_silence_is_not_taken_for_chunks() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("quiet.wav");
    let start = Instant::now();
    let recorder = Recorder::create(&path, start).expect("create");
    recorder
        .finish(start + std::time::Duration::from_micros(12_500))
        .expect("finish");
    // As the header was when the call began: 100 frames of zeros after a
    // data chunk of none, which would read as 50 empty chunks.
    let mut bytes = std::fs::read(&path).expect("read");
    assert_eq!(bytes.len(), 44 + 400);
    bytes[4..8].copy_from_slice(&36u32.to_le_bytes());
    bytes[40..44].copy_from_slice(&[0; 4]);
    std::fs::write(&path, &bytes).expect("write");
    assert_eq!(
        repair(&path).expect("repair"),
        Repair::Fixed {
            frames: 100,
            trimmed: 0
        }
    );
    assert_eq!(duration(&path), 100);
}

#[test]
fn a_data_size_of_part_of_a_frame_is_repaired() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (path, reference) = reference(dir.path());
    let mut bytes = std::fs::read(&path).expect("read");
    // Sizes that agree with the file, but end half way through a frame.
    bytes.truncate(bytes.len() - 2);
    let riff = (bytes.len() as u32 - 8).to_le_bytes();
    let data = (bytes.len() as u32 - 44).to_le_bytes();
    bytes[4..8].copy_from_slice(&riff);
    bytes[40..44].copy_from_slice(&data);
    std::fs::write(&path, &bytes).expect("write");
    let frames = (bytes.len() as u64 - 44) / 4;
    assert_eq!(
        repair(&path).expect("repair"),
        Repair::Fixed { frames, trimmed: 2 }
    );
    is_prefix(&path, frames, &reference);
}

#[test]
fn chunks_after_the_data_are_kept() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (path, reference) = reference(dir.path());
    let frames = u64::from(duration(&path));
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend_from_slice(b"LIST\x04\x00\x00\x00INFO");
    let riff = (bytes.len() as u32 - 8).to_le_bytes();

    // Sizes that agree with the file: nothing to do.
    let mut whole = bytes.clone();
    whole[4..8].copy_from_slice(&riff);
    std::fs::write(&path, &whole).expect("write");
    assert_eq!(repair(&path).expect("repair"), Repair::Intact);
    assert_eq!(std::fs::read(&path).expect("read"), whole);

    // A RIFF size that does not: it alone is fixed.
    std::fs::write(&path, &bytes).expect("write");
    assert_eq!(
        repair(&path).expect("repair"),
        Repair::Fixed { frames, trimmed: 0 }
    );
    assert_eq!(std::fs::read(&path).expect("read"), whole);
    is_prefix(&path, frames, &reference);
}

#[test]
fn what_is_not_a_wav_file_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("notes.wav");
    let text = b"RIFF is not enough: these are meeting notes.".to_vec();
    std::fs::write(&path, &text).expect("write");
    let err = repair(&path).expect_err("not WAV");
    assert!(matches!(err, Error::NotWav { .. }), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), text);

    let err = repair(dir.path().join("missing.wav")).expect_err("missing");
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn a_directory_is_repaired_file_by_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("recordings");
    std::fs::create_dir_all(root.join("b/sub")).expect("mkdir");
    std::fs::create_dir_all(root.join("a")).expect("mkdir");
    let (_, reference) = reference(dir.path());

    let crashed = root.join("a/crashed.wav");
    std::mem::forget(three_seconds(&crashed));
    let done = root.join("b/sub/done.WAV");
    finish(three_seconds(&done));
    let junk = root.join("junk.wav");
    std::fs::write(&junk, b"junk").expect("write");
    let other = root.join("b/notes.txt");
    std::fs::write(&other, b"RIFF\0\0\0\0WAVE").expect("write");

    let results = repair_dir(&root).expect("repair dir");
    let paths: Vec<&PathBuf> = results.iter().map(|file| &file.path).collect();
    assert_eq!(paths, [&crashed, &done, &junk]);
    assert!(matches!(results[0].outcome, Ok(Repair::Fixed { .. })));
    assert!(matches!(results[1].outcome, Ok(Repair::Intact)));
    assert!(matches!(results[2].outcome, Err(Error::NotWav { .. })));
    let frames = u64::from(duration(&crashed));
    assert!(frames > 0);
    is_prefix(&crashed, frames, &reference);
    assert_eq!(std::fs::read(&other).expect("read"), b"RIFF\0\0\0\0WAVE");

    let err = repair_dir(dir.path().join("none")).expect_err("no directory");
    assert!(matches!(err, Error::Io { .. }), "{err}");
}
