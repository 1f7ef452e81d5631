//! Trunks, with SIPp as the carrier on 127.0.0.2 (phones stay on
//! 127.0.0.1, so the trunk's ACL tells them apart): the PBX registers
//! with the carrier and answers its digest challenge, sends a dialled
//! number out rewritten and answers the challenge to its INVITE, and
//! unregisters when it stops; calls from the carrier reach the extension
//! their DID names, and a number with no DID is refused.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::process::Command;
use std::time::{Duration, Instant};
use trunkline_cdr::{Direction, Disposition};
use trunkline_e2e::{EXTENSIONS, Pbx, call_as_1001, phone, phones_done, records};
use trunkline_testkit::{Reaped, free_port};

const CARRIER: &str = "127.0.0.2";

/// The carrier's trunk (its credentials those `carrier_uas.xml` checks)
/// and a route that sends 9 + a national number out as +44 and the number.
fn trunk_config(carrier_port: u16, extra: &str) -> String {
    format!(
        "{EXTENSIONS}\n[[trunks]]\nname = \"carrier\"\nuri = \"sip:{CARRIER}:{carrier_port}\"\n\
         username = \"acct1234\"\npassword = \"carrier-secret\"\n{extra}\n\
         [[routes]]\nname = \"out\"\nmatch = {{ prefix = \"9\" }}\nrewrite = \"+44\"\n\
         to = {{ trunk = \"carrier\" }}\n"
    )
}

fn sipp_command(scenario: &str) -> Command {
    let mut command = trunkline_testkit::sipp();
    command
        .args(["-sf", &trunkline_e2e::scenario_path(scenario)])
        .args(["-i", CARRIER, "-t", "u1"]);
    command
}

/// Waits until the health document says the trunk is registered.
fn wait_registered(pbx: &Pbx) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let health = pbx.health();
        if health["trunks"][0]["registered"] == true {
            assert_eq!(health["trunks"][0]["name"], "carrier", "{health}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not registered: {health}\n{}",
            pbx.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Registration with the carrier (401 answered), 1001's call to
/// 92071234567 out through it as +442071234567 (407 answered, answered),
/// and the unregistration at shutdown: the carrier's three calls.
#[test]
fn the_pbx_registers_with_a_trunk_calls_out_through_it_and_unregisters() {
    let (mut carrier, carrier_port) = trunkline_e2e::carrier();

    let mut pbx = Pbx::start(&trunk_config(carrier_port, "register = true"));
    wait_registered(&pbx);
    call_as_1001(&pbx, "call_answered.xml", "92071234567");
    pbx.wait_idle();

    let records = records(&pbx);
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.direction, Direction::Outbound);
    assert_eq!(record.destination_channel.as_deref(), Some("trunk/carrier"));
    assert_eq!(record.callee.number, "92071234567");

    pbx.stop();
    assert!(
        pbx.log().contains("unregistered from the trunk"),
        "{}",
        pbx.log()
    );
    assert_eq!(
        carrier.exit_code(Duration::from_secs(20)),
        Some(0),
        "{}",
        pbx.log()
    );
}

/// The carrier calls a DID from an address the ACL admits: no challenge,
/// 1002's phone answers. A number without a DID gets 404.
#[test]
fn a_call_from_a_trunk_rings_the_extension_its_did_names() {
    let extra = format!("inbound_acl = [\"{CARRIER}\"]\ndid = {{ \"+442071234567\" = \"1002\" }}");
    let pbx = Pbx::start(&trunk_config(free_port(), &extra));
    let callee = phone(&pbx, "1002", "second-secret", "uas_answer.xml");
    for (scenario, number) in [
        ("carrier_call.xml", "+442071234567"),
        ("carrier_call_unknown.xml", "+442079999999"),
    ] {
        let mut call = sipp_command(scenario);
        call.args(["-s", number, "-m", "1"])
            .args(["-p", &free_port().to_string()])
            .arg(format!("127.0.0.1:{}", pbx.sip_port));
        let code = Reaped::spawn(&mut call).exit_code(Duration::from_secs(60));
        assert_eq!(code, Some(0), "{scenario}: {}", pbx.log());
    }
    // The refused call's record: stored once it stops counting.
    phones_done(&pbx, vec![("1002", callee)]);

    let records = records(&pbx);
    assert_eq!(records.len(), 2, "{records:?}");
    let answered = records.iter().find(|r| r.callee.number == "+442071234567");
    let refused = records.iter().find(|r| r.callee.number == "+442079999999");
    let (Some(answered), Some(refused)) = (answered, refused) else {
        panic!("{records:?}")
    };
    assert_eq!(answered.disposition, Disposition::Answered);
    assert_eq!(answered.direction, Direction::Inbound);
    assert_eq!(answered.source_channel, "trunk/carrier");
    assert_eq!(
        answered.destination_channel.as_deref(),
        Some("extension/1002")
    );
    assert_eq!(
        (
            answered.caller.number.as_str(),
            answered.caller.name.as_deref()
        ),
        ("+447700900123", Some("Carrier Caller"))
    );
    assert_eq!(refused.disposition, Disposition::Failed);
    assert_eq!(refused.hangup.sip_status, Some(404));
}
