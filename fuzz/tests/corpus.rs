//! Replays the saved fuzz corpus through the target bodies, so a fixed
//! crash stays fixed in the ordinary `cargo test` run.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("readable corpus folder").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        run(&data);
        count += 1;
    }
    assert!(count > 0, "no corpus in {}", dir.display());
}

#[test]
fn sip_message_corpus() {
    replay("sip_message", trunkline_fuzz::sip_message);
}

#[test]
fn sdp_corpus() {
    replay("sdp", trunkline_fuzz::sdp);
}
