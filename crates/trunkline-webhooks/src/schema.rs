//! The JSON Schema of every contract, generated from the types themselves
//! so the published document cannot drift from what is sent and read.

use crate::router::{RouterDecision, RouterRequest};
use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};
use trunkline_cdr::Cdr;
use trunkline_registrar::RegistrationEvent;

/// A JSON Schema (draft 2020-12) document whose `$defs` describe each
/// contract: `RouterRequest` (the router's POST), `RouterDecision` (its
/// answer), `RegistrationEvent` (the locator webhook) and `Cdr` (the CDR
/// push's `calllog.json`). What the PBX sends is described as it writes
/// it (every field present); the router's answer as the PBX reads it
/// (only `action` required).
pub fn json_schema() -> Value {
    let mut sent = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    sent.subschema_for::<RouterRequest>();
    sent.subschema_for::<RegistrationEvent>();
    sent.subschema_for::<Cdr>();
    let mut read = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    read.subschema_for::<RouterDecision>();
    let mut definitions = take_definitions(sent);
    definitions.extend(take_definitions(read));
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Trunkline webhooks",
        "description": "The JSON bodies of Trunkline's outbound webhooks; docs/webhooks.md describes each hook.",
        "$defs": definitions,
    })
}

fn take_definitions(mut generator: SchemaGenerator) -> serde_json::Map<String, Value> {
    generator.take_definitions(true)
}
