//! The recorder and repair, end to end: RTP in, WAV files read back with
//! hound.

mod alignment;
mod common;
mod memory;
mod repair;
mod robustness;
