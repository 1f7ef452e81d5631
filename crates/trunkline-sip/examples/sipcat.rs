//! `sipcat [--json] FILE...`: parses each file as one SIP message, bytes
//! as they are, checks every well-known header, and prints one line per file:
//!
//! ```text
//! FILE: ok METHOD-or-STATUS
//! FILE: error REASON
//! ```
//!
//! With `--json`, each line is instead a JSON object with the parsed
//! message (or the error). Exits with 0 if every file parsed, 1 if any did
//! not, 2 on bad usage or an unreadable file.

use serde_json::{Value, json};
use std::io::Write;
use std::process::ExitCode;
use trunkline_sip::{Error, Host, Message, NameAddr, Uri};

fn main() -> ExitCode {
    let mut json = false;
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--json" => json = true,
            "-h" | "--help" => {
                eprintln!("usage: sipcat [--json] FILE...");
                return ExitCode::SUCCESS;
            }
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        eprintln!("usage: sipcat [--json] FILE...");
        return ExitCode::from(2);
    }
    let mut all_ok = true;
    let mut out = std::io::stdout().lock();
    for file in &files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{file}: cannot read: {e}");
                return ExitCode::from(2);
            }
        };
        // Strict: every well-known header checked, not only the ones a
        // transaction needs.
        let parsed = Message::parse(bytes.into()).and_then(|m| m.validate().map(|()| m));
        all_ok &= parsed.is_ok();
        let line = match (&parsed, json) {
            (Ok(m), false) => format!("{file}: ok {}", start(m)),
            (Err(e), false) => format!("{file}: error {e}"),
            (Ok(m), true) => message_json(file, m).to_string(),
            (Err(e), true) => error_json(file, e).to_string(),
        };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(2);
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The method of a request, the status code of a response.
fn start(m: &Message) -> String {
    match (m.method(), m.status()) {
        (Some(method), _) => method.to_string(),
        (_, Some(status)) => status.to_string(),
        _ => String::new(),
    }
}

fn message_json(file: &str, m: &Message) -> Value {
    let mut v = json!({
        "file": file,
        "ok": true,
        "type": if m.is_request() { "request" } else { "response" },
        "headers": m.headers().map(|h| json!({"name": h.name, "value": h.value})).collect::<Vec<_>>(),
        "via": m.vias().map(|v| json!({
            "transport": v.transport(),
            "host": host(v.host()),
            "port": v.port(),
            "branch": v.branch(),
            "received": v.received(),
            "rport": v.rport().map(|p| p.map_or(json!(true), |p| json!(p))),
        })).collect::<Vec<_>>(),
        "from": m.from().map(|a| address(&a)),
        "to": m.to().map(|a| address(&a)),
        "call_id": m.call_id(),
        "cseq": m.cseq().map(|c| json!({"seq": c.seq, "method": c.method})),
        "max_forwards": m.max_forwards(),
        "contacts": m.contacts().map(|c| c.address().map_or(json!("*"), address)).collect::<Vec<_>>(),
        "routes": m.routes().map(|a| address(&a)).collect::<Vec<_>>(),
        "record_routes": m.record_routes().map(|a| address(&a)).collect::<Vec<_>>(),
        "content_type": m.content_type().map(|t| format!("{}/{}", t.mtype(), t.subtype())),
        "content_length": m.content_length(),
        "body_len": m.body().len(),
        "body": std::str::from_utf8(m.body()).ok(),
    });
    let start = match (m.method(), m.uri(), m.status()) {
        (Some(method), Some(u), _) => json!({"method": method.as_str(), "uri": uri(u)}),
        (_, _, Some(status)) => json!({"status": status.as_u16(), "reason": m.reason()}),
        _ => json!({}),
    };
    if let (Value::Object(v), Value::Object(start)) = (&mut v, start) {
        v.extend(start);
    }
    v
}

fn error_json(file: &str, e: &Error) -> Value {
    json!({
        "file": file,
        "ok": false,
        "error": e.to_string(),
        "status": e.status().as_u16(),
        "reason_phrase": e.reason_phrase(),
        "offset": e.offset(),
        "header": e.header().map(|h| h.as_str()),
    })
}

fn address(a: &NameAddr<'_>) -> Value {
    json!({
        "display_name": a.display_name(),
        "uri": uri(a.uri()),
        "params": a.params().iter().collect::<Vec<_>>(),
    })
}

fn uri(u: Uri<'_>) -> Value {
    match u {
        Uri::Sip(s) => json!({
            "text": s.as_str(),
            "scheme": if s.is_secure() { "sips" } else { "sip" },
            "user": s.user(),
            "host": host(s.host()),
            "port": s.port(),
            "params": s.params().iter().collect::<Vec<_>>(),
            "headers": s.headers(),
        }),
        other => json!({"text": other.as_str(), "scheme": other.scheme()}),
    }
}

fn host(h: Host<'_>) -> String {
    h.to_string()
}
