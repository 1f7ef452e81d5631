//! Fixing the sizes of WAV files cut off by a crash.
//!
//! A recording's header is written with zero sizes when the call starts
//! and given its real sizes when it ends, so a crash in between leaves
//! audio that readers take for an empty file (or, cut off while a file was
//! being copied, sizes larger than the file). Repair takes the data chunk
//! to run to the end of the file, as it does in every recording this crate
//! writes, keeps its whole frames and rewrites both sizes.

use crate::Error;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// What [`repair`] did to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// Its sizes were right: nothing changed.
    Intact,
    /// Its sizes were rewritten.
    Fixed {
        /// Frames (one sample per channel) the data chunk now holds.
        frames: u64,
        /// Bytes cut from the end: the part of a frame the crash left
        /// incomplete.
        trimmed: u64,
    },
}

/// Chunks walked before the data chunk; a file with more is not taken for
/// a recording.
const MAX_CHUNKS: usize = 1024;

/// Chunks after the data chunk walked before the bytes there are taken for
/// undeclared audio.
const MAX_TRAILING_CHUNKS: usize = 64;

/// Fixes the RIFF and data sizes of the WAV file at `path` if they do not
/// match its length, cutting off an incomplete last frame. Run it on
/// recordings no process is writing, as at startup.
pub fn repair(path: impl AsRef<Path>) -> Result<Repair, Error> {
    let path = path.as_ref();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_wav = |reason| Error::NotWav {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len < 12 {
        return Err(not_wav("shorter than a RIFF header"));
    }
    let mut riff = [0u8; 12];
    file.read_exact(&mut riff).map_err(io)?;
    if &riff[..4] != b"RIFF" || &riff[8..] != b"WAVE" {
        return Err(not_wav("no RIFF WAVE header"));
    }
    let riff_size = u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]]);

    let mut block_align = 0u64;
    let mut at = 12u64;
    let mut data = None;
    for _ in 0..MAX_CHUNKS {
        let Some((id, size)) = chunk_header(&mut file, at, len).map_err(io)? else {
            break;
        };
        let size = u64::from(size);
        if &id == b"data" {
            data = Some((at + 8, size));
            break;
        }
        if &id == b"fmt " {
            if size < 16 || at + 8 + 16 > len {
                return Err(not_wav("short fmt chunk"));
            }
            let mut fmt = [0u8; 16];
            file.read_exact(&mut fmt).map_err(io)?;
            block_align = u64::from(u16::from_le_bytes([fmt[12], fmt[13]]));
        }
        at += 8 + size + (size & 1);
    }
    let Some((data_start, declared)) = data else {
        return Err(not_wav("no data chunk"));
    };
    if block_align == 0 {
        return Err(not_wav("no fmt chunk before the data"));
    }
    // What the RIFF size counts besides the data: everything after its own
    // field up to the data.
    let Some(room) = u64::from(u32::MAX).checked_sub(data_start - 8) else {
        return Err(not_wav("larger than a WAV file can be"));
    };

    let declared_end = data_start + declared + (declared & 1);
    let data_fits = declared % block_align == 0
        && (declared_end == len
            || (declared_end < len && tiles(&mut file, declared_end, len).map_err(io)?));
    if data_fits {
        if u64::from(riff_size) + 8 == len {
            return Ok(Repair::Intact);
        }
        let Ok(riff_size) = u32::try_from(len - 8) else {
            return Err(not_wav("larger than a WAV file can be"));
        };
        write_u32(&mut file, 4, riff_size).map_err(io)?;
        file.sync_all().map_err(io)?;
        return Ok(Repair::Fixed {
            frames: declared / block_align,
            trimmed: 0,
        });
    }

    // Cut off: the data runs to the end of the file, whole frames of it.
    let bytes = (len - data_start).min(room);
    let bytes = bytes - bytes % block_align;
    let new_len = data_start + bytes;
    // Both fit: `bytes` is at most `room`, and `new_len - 8` is `bytes`
    // plus what `room` left out.
    let data_size = u32::try_from(bytes).unwrap_or(u32::MAX);
    let riff_size = u32::try_from(new_len - 8).unwrap_or(u32::MAX);
    if new_len < len {
        file.set_len(new_len).map_err(io)?;
    }
    write_u32(&mut file, data_start - 4, data_size).map_err(io)?;
    write_u32(&mut file, 4, riff_size).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(Repair::Fixed {
        frames: bytes / block_align,
        trimmed: len - new_len,
    })
}

/// What [`repair_dir`] did to one file.
#[derive(Debug)]
pub struct RepairedFile {
    /// The file.
    pub path: PathBuf,
    /// What [`repair`] made of it.
    pub outcome: Result<Repair, Error>,
}

/// Repairs every `.wav` file under `dir` (subdirectories included, symbolic
/// links not followed), in path order. The error is a directory that
/// cannot be read; each file has its own outcome, so one bad file does not
/// keep the others from being repaired.
pub fn repair_dir(dir: impl AsRef<Path>) -> Result<Vec<RepairedFile>, Error> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.as_ref().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let io = |source| Error::Io {
            path: dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let kind = entry.file_type().map_err(io)?;
            let path = entry.path();
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file()
                && path
                    .extension()
                    .is_some_and(|ext| ext.eq_ignore_ascii_case("wav"))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|path| RepairedFile {
            outcome: repair(&path),
            path,
        })
        .collect())
}

/// The id and size of the chunk at `at`, if its header is inside the file.
fn chunk_header(file: &mut File, at: u64, len: u64) -> io::Result<Option<([u8; 4], u32)>> {
    if at + 8 > len {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(at))?;
    let mut header = [0u8; 8];
    file.read_exact(&mut header)?;
    let [a, b, c, d, size @ ..] = header;
    Ok(Some(([a, b, c, d], u32::from_le_bytes(size))))
}

/// Whether the bytes from `at` to `len` are whole chunks with printable
/// ids (a LIST after the data, say) rather than audio a crash left
/// undeclared: a header written as the call began declares no data, and
/// audio, silence above all, does not read as printable ids.
fn tiles(file: &mut File, mut at: u64, len: u64) -> io::Result<bool> {
    for _ in 0..MAX_TRAILING_CHUNKS {
        if at == len {
            return Ok(true);
        }
        let Some((id, size)) = chunk_header(file, at, len)? else {
            return Ok(false);
        };
        if !id.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Ok(false);
        }
        let size = u64::from(size);
        at += 8 + size + (size & 1);
    }
    Ok(at == len)
}

fn write_u32(file: &mut File, at: u64, value: u32) -> io::Result<()> {
    file.seek(SeekFrom::Start(at))?;
    file.write_all(&value.to_le_bytes())
}
