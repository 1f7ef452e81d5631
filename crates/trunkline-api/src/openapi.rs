//! The OpenAPI 3.1 document, written by hand and held to [`ROUTES`] by a
//! test.
//!
//! [`ROUTES`]: crate::ROUTES

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn json_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

fn id_parameter() -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": "The call record's id.",
        "schema": {"type": "string"}
    })
}

/// The errors every keyed route may answer.
fn keyed(mut responses: Value) -> Value {
    if let Some(map) = responses.as_object_mut() {
        map.insert(
            "401".into(),
            error_response("No API key, or an unknown one (`unauthorized`)."),
        );
        map.insert(
            "403".into(),
            error_response("The key's scope is too small (`forbidden`)."),
        );
    }
    responses
}

/// The errors every admin route may answer besides those of [`keyed`].
fn admin_errors(mut responses: Value) -> Value {
    if let Some(map) = responses.as_object_mut() {
        map.insert(
            "403".into(),
            error_response("The key's scope is too small (`forbidden`), or the address is not in the AMI allow-list."),
        );
    }
    responses
}

/// The operations of one CRUD resource's collection and item paths: its
/// entries' schema `schema`, the listing's array `list_key`, what
/// identifies an entry.
fn crud_paths(schema: &str, list_key: &str, id: &str) -> (Value, Value) {
    let entry = |description: &str| json_response(description, schema);
    let request = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}Input")}}}});
    let id_parameter = json!({
        "name": "id", "in": "path", "required": true,
        "description": format!("The entry's {id}."),
        "schema": {"type": "string"}
    });
    let not_found = error_response("No such entry (`not_found`).");
    let invalid = error_response(
        "The entry is refused: `invalid_field` names the field (`ha1: must be 32 hex digits …`), `bad_request` for a body that is not a JSON object.",
    );
    let collection_ops = json!({
        "get": {
            "summary": format!("Every {list_key} entry, the configuration file's first, then those made through the API (scope read)."),
            "responses": keyed(json!({"200": {"description": "The entries.", "content": {"application/json": {"schema": {
                "type": "object", "required": [list_key],
                "properties": {list_key: {"type": "array", "items": {"$ref": format!("#/components/schemas/{schema}")}}}
            }}}}}))
        },
        "post": {
            "summary": format!("Create a {list_key} entry, stored and applied at once (scope admin)."),
            "requestBody": request.clone(),
            "responses": keyed(json!({
                "201": entry("Created; `Location` names it."),
                "400": invalid.clone(),
                "409": error_response("The id is taken (`conflict`)."),
                "413": error_response("The body is over 2 MiB (`payload_too_large`)."),
                "415": error_response("The body is not JSON (`unsupported_media_type`).")
            }))
        }
    });
    let item_ops = json!({
        "get": {
            "summary": format!("One {list_key} entry (scope read)."),
            "parameters": [id_parameter.clone()],
            "responses": keyed(json!({"200": entry("The entry."), "404": not_found.clone()}))
        },
        "put": {
            "summary": format!("Replace an entry made through the API (scope admin). A secret left out is kept."),
            "parameters": [id_parameter.clone()],
            "requestBody": request,
            "responses": keyed(json!({
                "200": entry("The entry as stored."),
                "400": invalid,
                "404": not_found.clone(),
                "409": error_response("The entry is the configuration file's (`read_only`), or others depend on what changed (`conflict`).")
            }))
        },
        "delete": {
            "summary": format!("Delete an entry made through the API (scope admin)."),
            "parameters": [id_parameter],
            "responses": keyed(json!({
                "204": {"description": "Deleted, and no longer in force."},
                "404": not_found,
                "409": error_response("The entry is the configuration file's (`read_only`), or a route, group or DID still uses it (`conflict`).")
            }))
        }
    });
    (collection_ops, item_ops)
}

fn search_parameters() -> Value {
    let string = |name: &str, description: &str| json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}});
    json!([
        string("from", "Calls that started at or after this: RFC 3339 or Unix seconds."),
        string("to", "Calls that started before this: RFC 3339 or Unix seconds."),
        string("party", "Calls with this number as caller or callee."),
        {"name": "disposition", "in": "query", "required": false,
         "schema": {"type": "string", "enum": ["ANSWERED", "NO ANSWER", "BUSY", "FAILED"]}},
        {"name": "direction", "in": "query", "required": false,
         "schema": {"type": "string", "enum": ["inbound", "outbound", "internal"]}},
        {"name": "page_size", "in": "query", "required": false,
         "description": "Records per page, 1 to 10000 (100 by default).",
         "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}},
        string("after", "The previous page's `next`."),
        {"name": "order", "in": "query", "required": false,
         "description": "`oldest` first (the default) or `newest` first.",
         "schema": {"type": "string", "enum": ["oldest", "newest"], "default": "oldest"}}
    ])
}

/// The CRUD entries' schemas: each as read (with `source` and, in place
/// of secrets, `…_set`) and as written (`…Input`).
fn entry_schemas() -> Value {
    let source = json!({"type": "string", "enum": ["config", "api"],
        "description": "`config`: from the configuration file, read-only here; `api`: made through the API."});
    let media_proxy = json!({"type": "string", "enum": ["auto", "always", "none", "nat"]});
    let extension = json!({
        "number": {"type": "string", "description": "Letters, digits and `. _ - + *`; the SIP user name."},
        "display_name": {"type": ["string", "null"]}
    });
    let trunk = json!({
        "name": {"type": "string"},
        "uri": {"type": "string", "description": "`sip:host[:port][;transport=tcp]`, `sips:` for TLS."},
        "username": {"type": ["string", "null"]},
        "register": {"type": "boolean", "default": false},
        "inbound_acl": {"type": "array", "items": {"type": "string"}, "description": "Networks (CIDR) or addresses."},
        "did": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Dialled number → extension."}
    });
    let route = json!({
        "name": {"type": "string"},
        "match": {"type": "object", "description": "`{\"prefix\": \"9\"}` or `{\"regex\": \"0(\\\\d{9,10})\"}`.",
            "minProperties": 1, "maxProperties": 1,
            "properties": {"prefix": {"type": "string"}, "regex": {"type": "string"}}},
        "rewrite": {"type": ["string", "null"]},
        "to": {"type": "object", "description": "`{\"extension\"|\"group\"|\"trunk\": name}`.",
            "minProperties": 1, "maxProperties": 1,
            "properties": {"extension": {"type": "string"}, "group": {"type": "string"}, "trunk": {"type": "string"}}},
        "strategy": {"type": "string", "enum": ["parallel", "sequential"], "default": "parallel"},
        "ring_timeout_secs": {"type": "integer", "minimum": 1, "default": 30},
        "record": {"type": ["boolean", "null"]},
        "media_proxy": {"oneOf": [media_proxy, {"type": "null"}]}
    });
    let with = |base: &Value, extra: Value| {
        let mut map = base.as_object().cloned().unwrap_or_default();
        if let Some(extra) = extra.as_object() {
            map.extend(extra.clone());
        }
        Value::Object(map)
    };
    let secret = |description: &str| json!({"type": "string", "writeOnly": true, "description": description});
    json!({
        "Extension": {"type": "object", "required": ["number", "password_set", "ha1_set", "source"],
            "properties": with(&extension, json!({
                "password_set": {"type": "boolean"}, "ha1_set": {"type": "boolean"}, "source": source
            }))},
        "ExtensionInput": {"type": "object", "required": ["number"], "additionalProperties": false,
            "properties": with(&extension, json!({
                "password": secret("The digest password; on PUT, left out keeps the stored secret."),
                "ha1": secret("Instead of password: MD5 (32 hex digits) or SHA-256 (64) of number:realm:password."),
                "password_set": {"type": "boolean", "readOnly": true, "description": "Ignored."},
                "ha1_set": {"type": "boolean", "readOnly": true, "description": "Ignored."},
                "source": {"type": "string", "readOnly": true, "description": "Ignored."}
            }))},
        "Trunk": {"type": "object", "required": ["name", "uri", "register", "inbound_acl", "did", "password_set", "source"],
            "properties": with(&trunk, json!({"password_set": {"type": "boolean"}, "source": source}))},
        "TrunkInput": {"type": "object", "required": ["name", "uri"], "additionalProperties": false,
            "properties": with(&trunk, json!({
                "password": secret("With username; on PUT, left out keeps the stored password."),
                "password_set": {"type": "boolean", "readOnly": true, "description": "Ignored."},
                "source": {"type": "string", "readOnly": true, "description": "Ignored."}
            }))},
        "Route": {"type": "object", "required": ["name", "match", "to", "strategy", "ring_timeout_secs", "source"],
            "properties": with(&route, json!({"source": source}))},
        "RouteInput": {"type": "object", "required": ["name", "match", "to"], "additionalProperties": false,
            "properties": with(&route, json!({
                "source": {"type": "string", "readOnly": true, "description": "Ignored."}
            }))},
        "ReloadSummary": {"type": "object", "required": ["reloaded", "added", "changed", "removed", "shadowed"],
            "properties": {
                "reloaded": {"type": "string", "enum": ["trunks", "routes", "acl"]},
                "added": {"type": "array", "items": {"type": "string"}, "description": "Names now in force that were not."},
                "changed": {"type": "array", "items": {"type": "string"}, "description": "Names whose entry (for acl: whose inbound_acl) changed."},
                "removed": {"type": "array", "items": {"type": "string"}},
                "shadowed": {"type": "array", "items": {"type": "string"}, "description": "Entries made through the API that the file now also names: the file's wins."},
                "registrations": {"type": "object", "description": "Trunk registrations started, restarted, stopped.",
                    "properties": {
                        "started": {"type": "array", "items": {"type": "string"}},
                        "restarted": {"type": "array", "items": {"type": "string"}},
                        "stopped": {"type": "array", "items": {"type": "string"}}
                    }},
                "ami_allows": {"type": "array", "items": {"type": "string"}, "description": "acl: the AMI allow-list now."}
            }},
        "Dialogs": {"type": "object", "required": ["dialogs"], "properties": {"dialogs": {"type": "array", "items": {
            "type": "object",
            "required": ["call_id", "local_tag", "remote_tag", "state", "local", "remote", "remote_target",
                         "route_set", "local_cseq", "remote_cseq", "secure", "transport", "peer"],
            "properties": {
                "call_id": {"type": "string"},
                "local_tag": {"type": "string"},
                "remote_tag": {"type": "string"},
                "state": {"type": "string", "enum": ["early", "confirmed"]},
                "local": {"type": "string", "description": "Our address with our tag."},
                "remote": {"type": "string", "description": "The peer's address with its tag."},
                "remote_target": {"type": "string", "description": "The peer's Contact URI."},
                "route_set": {"type": "array", "items": {"type": "string"}},
                "local_cseq": {"type": "integer"},
                "remote_cseq": {"type": ["integer", "null"]},
                "secure": {"type": "boolean"},
                "transport": {"type": "string"},
                "peer": {"type": "string", "description": "address:port of the flow."}
            }
        }}}}
    })
}

fn schemas() -> Value {
    let nullable_time = json!({"type": ["string", "null"], "format": "date-time"});
    let mut schemas = json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": crate::error::CODES.iter().map(|(c, _)| *c).collect::<Vec<_>>()},
                    "message": {"type": "string"}
                }
            }}
        },
        "Health": {
            "type": "object",
            "required": ["status", "uptime_seconds", "active_calls", "registrations", "trunks", "load", "calls_per_second", "sip"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "draining"]},
                "uptime_seconds": {"type": "integer"},
                "active_calls": {"type": "integer"},
                "registrations": {"type": "integer"},
                "trunks": {"type": "array", "items": {
                    "type": "object", "required": ["name", "registered", "expires_at", "error"],
                    "properties": {
                        "name": {"type": "string"},
                        "registered": {"type": "boolean"},
                        "expires_at": {"type": ["integer", "null"], "description": "Unix seconds."},
                        "error": {"type": ["string", "null"]}
                    }
                }},
                "load": {"type": ["number", "null"], "description": "The 1-minute load average."},
                "calls_per_second": {"type": "number", "description": "Calls started per second over the last minute."},
                "sip": {
                    "type": "object", "required": ["transactions", "dialogs", "call_dialogs"],
                    "description": "What the SIP stack holds; all zero once nothing goes on (transactions linger 32 s).",
                    "properties": {
                        "transactions": {"type": "integer"},
                        "dialogs": {"type": "integer"},
                        "call_dialogs": {"type": "integer"}
                    }
                },
                "outbox": {
                    "type": "object",
                    "description": "The webhook outbox; absent when no webhook is configured.",
                    "required": ["pending", "delivered", "failed", "failed_attempts", "refused_full", "dead"],
                    "properties": {
                        "pending": {"type": "integer", "description": "Deliveries waiting now."},
                        "delivered": {"type": "integer", "description": "Deliveries accepted since start."},
                        "failed": {"type": "integer", "description": "Deliveries given up on since start (dead-lettered)."},
                        "failed_attempts": {"type": "integer", "description": "Failed attempts since start, retried or not."},
                        "refused_full": {"type": "integer", "description": "Deliveries refused since start because the outbox was full."},
                        "dead": {"type": "integer", "description": "Dead letters kept now."}
                    }
                }
            }
        },
        "Party": {
            "type": "object", "required": ["number", "name"],
            "properties": {"number": {"type": "string"}, "name": {"type": ["string", "null"]}}
        },
        "SipFlowEntry": {
            "type": "object",
            "required": ["time", "direction", "transport", "source", "destination", "message"],
            "properties": {
                "time": {"type": "string", "format": "date-time"},
                "direction": {"type": "string", "enum": ["received", "sent"]},
                "transport": {"type": "string"},
                "source": {"type": "string", "description": "address:port"},
                "destination": {"type": "string", "description": "address:port"},
                "message": {"type": "string", "description": "The whole SIP message."}
            }
        },
        "CallRecord": {
            "type": "object",
            "description": "A call detail record (docs/api.md and trunkline-cdr show a whole one).",
            "required": ["id", "call_id", "caller", "callee", "source_channel", "destination_channel",
                         "direction", "start_time", "ring_time", "answer_time", "end_time", "duration",
                         "billsec", "disposition", "hangup", "recording", "sip_flow", "sip_flow_omitted"],
            "properties": {
                "id": {"type": "string"},
                "call_id": {"type": "string"},
                "caller": {"$ref": "#/components/schemas/Party"},
                "callee": {"$ref": "#/components/schemas/Party"},
                "source_channel": {"type": "string"},
                "destination_channel": {"type": ["string", "null"]},
                "direction": {"type": "string", "enum": ["inbound", "outbound", "internal"]},
                "start_time": {"type": "string", "format": "date-time"},
                "ring_time": nullable_time,
                "answer_time": nullable_time,
                "end_time": {"type": "string", "format": "date-time"},
                "duration": {"type": "integer"},
                "billsec": {"type": "integer"},
                "disposition": {"type": "string", "enum": ["ANSWERED", "NO ANSWER", "BUSY", "FAILED"]},
                "hangup": {"type": "object", "required": ["cause", "sip_status", "reason", "by"], "properties": {
                    "cause": {"type": "string"},
                    "sip_status": {"type": ["integer", "null"]},
                    "reason": {"type": ["string", "null"]},
                    "by": {"type": "string", "enum": ["caller", "callee", "pbx"]}
                }},
                "recording": {"type": ["string", "null"]},
                "sip_flow": {"type": "array", "items": {"$ref": "#/components/schemas/SipFlowEntry"}},
                "sip_flow_omitted": {"type": "integer"}
            }
        },
        "RecordPage": {
            "type": "object", "required": ["records", "next"],
            "properties": {
                "records": {"type": "array", "items": {"$ref": "#/components/schemas/CallRecord"}},
                "next": {"type": ["string", "null"], "description": "The `after` of the next page; null on the last."}
            }
        },
        "Search": {
            "type": "object", "additionalProperties": false,
            "properties": {
                "from": {"type": ["string", "integer"], "description": "RFC 3339 or Unix seconds."},
                "to": {"type": ["string", "integer"], "description": "RFC 3339 or Unix seconds."},
                "party": {"type": "string"},
                "disposition": {"type": "string", "enum": ["ANSWERED", "NO ANSWER", "BUSY", "FAILED"]},
                "direction": {"type": "string", "enum": ["inbound", "outbound", "internal"]},
                "page_size": {"type": "integer", "minimum": 1, "maximum": 10000},
                "after": {"type": "string"},
                "order": {"type": "string", "enum": ["oldest", "newest"]}
            }
        },
        "SipFlow": {
            "type": "object", "required": ["id", "call_id", "sip_flow", "sip_flow_omitted"],
            "properties": {
                "id": {"type": "string"},
                "call_id": {"type": "string"},
                "sip_flow": {"type": "array", "items": {"$ref": "#/components/schemas/SipFlowEntry"}},
                "sip_flow_omitted": {"type": "integer"}
            }
        },
        "Event": {
            "type": "object", "required": ["time", "type"],
            "description": "One WebSocket text message of /api/v1/events (docs/api.md shows each kind). `call` events carry the engine's call event (`event`: new, ringing, answered, held, ended, …, and `call_id`); `registration` events the registrar's (`event`, `timestamp`, `location`); `extension` events `extension` and `state`. `gap` (`from`, `to`) and `lag` (`missed`, `resume_since`) are about the client's stream and have no `seq`; a `lag` with a `source` and a `seq` says the PBX itself missed events.",
            "properties": {
                "seq": {"type": "integer", "minimum": 1, "description": "One more than the previous event's; starts at 1 when the PBX starts."},
                "time": {"type": "string", "format": "date-time"},
                "type": {"type": "string", "enum": ["call", "registration", "extension", "gap", "lag"]},
                "event": {"type": "string"},
                "call_id": {"type": "string"},
                "extension": {"type": "string"},
                "state": {"type": "string", "enum": ["idle", "in_use", "busy", "unavailable", "ringing", "on_hold"]},
                "from": {"type": "integer"},
                "to": {"type": "integer"},
                "missed": {"type": "integer"},
                "resume_since": {"type": "integer"},
                "source": {"type": "string", "enum": ["call", "registration"]}
            }
        },
        "CallCommand": {
            "type": "object", "required": ["action"],
            "properties": {
                "action": {"type": "string", "enum": ["hangup", "hold", "unhold", "mute", "unmute", "transfer", "accept"]},
                "reason": {"type": "string", "description": "hangup: why, for the record."},
                "leg": {"type": "string", "enum": ["caller", "callee"], "description": "hold, unhold, mute, unmute: whose (both without it); transfer: the party that stays (caller by default)."},
                "track_id": {"type": "string", "enum": ["audio-0", "audio-1"], "description": "mute, unmute: the caller's (audio-0) or the callee's (audio-1) audio."},
                "target": {"type": "string", "description": "transfer: an extension, a number or a SIP URI."},
                "sdp": {"type": "string", "description": "accept: the answer's session description."}
            }
        },
        "CommandStatus": {
            "type": "object", "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["done", "started"]}}
        },
        "ActiveCalls": {
            "type": "object", "required": ["calls"],
            "properties": {"calls": {"type": "array", "items": {
                "type": "object",
                "required": ["id", "call_id", "caller", "callee", "direction", "state", "started", "answered_at"],
                "properties": {
                    "id": {"type": "string", "description": "The id its call record will have."},
                    "call_id": {"type": "string"},
                    "caller": {"type": "string"},
                    "callee": {"type": "string"},
                    "direction": {"type": "string", "enum": ["inbound", "outbound", "internal"]},
                    "state": {"type": "string", "enum": ["trying", "ringing", "answered"]},
                    "started": {"type": "string", "format": "date-time"},
                    "answered_at": {"type": ["string", "null"], "format": "date-time"}
                }
            }}}
        }
    });
    if let (Some(map), Value::Object(entries)) = (schemas.as_object_mut(), entry_schemas()) {
        map.extend(entries);
    }
    schemas
}

/// The whole document.
pub(crate) fn document() -> Value {
    let record_not_found = error_response("No such record (`not_found`).");
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Trunkline API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Trunkline PBX's HTTP API. Errors are `{\"error\":{\"code\",\"message\"}}`; see docs/api.md."
        },
        "security": [{"bearer": []}],
        "paths": {
            "/ami/v1/health": {"get": {
                "summary": "Health check for load balancers: no key, AMI allow-list only.",
                "security": [],
                "responses": {
                    "200": json_response("Up and taking calls.", "Health"),
                    "503": json_response("Draining: new calls are refused.", "Health"),
                    "403": error_response("The address is not in the AMI allow-list (`forbidden`).")
                }
            }},
            "/console/call-records": {
                "get": {
                    "summary": "Search call records (scope read).",
                    "parameters": search_parameters(),
                    "responses": keyed(json!({
                        "200": json_response("One page of records.", "RecordPage"),
                        "400": error_response("A parameter does not parse (`bad_request`).")
                    }))
                },
                "post": {
                    "summary": "Search call records with a JSON body (scope read).",
                    "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Search"}}}},
                    "responses": keyed(json!({
                        "200": json_response("One page of records.", "RecordPage"),
                        "400": error_response("The body does not parse (`bad_request`)."),
                        "413": error_response("The body is over 2 MiB (`payload_too_large`).")
                    }))
                }
            },
            "/console/call-records/{id}": {"get": {
                "summary": "One call record (scope read).",
                "parameters": [id_parameter()],
                "responses": keyed(json!({
                    "200": json_response("The record.", "CallRecord"),
                    "404": record_not_found
                }))
            }},
            "/console/call-records/{id}/sip-flow": {"get": {
                "summary": "A call's SIP ladder (scope read).",
                "parameters": [id_parameter()],
                "responses": keyed(json!({
                    "200": json_response("Every SIP message of the call, in order.", "SipFlow"),
                    "404": record_not_found
                }))
            }},
            "/console/call-records/{id}/recording": {"get": {
                "summary": "A call's recording as WAV, whole or a byte range (scope read).",
                "parameters": [id_parameter(), {
                    "name": "Range", "in": "header", "required": false,
                    "description": "One range, `bytes=START-END`, `bytes=START-` or `bytes=-SUFFIX`.",
                    "schema": {"type": "string"}
                }],
                "responses": keyed(json!({
                    "200": {"description": "The whole file.", "content": {"audio/wav": {"schema": {"type": "string", "contentMediaType": "audio/wav"}}}},
                    "206": {"description": "The range asked for (Content-Range says which).", "content": {"audio/wav": {"schema": {"type": "string", "contentMediaType": "audio/wav"}}}},
                    "404": error_response("No such record, no recording, or not on disk (`not_found`)."),
                    "416": error_response("The range starts past the end (`range_not_satisfiable`).")
                }))
            }},
            "/console/calls/active": {"get": {
                "summary": "The calls in progress (scope read).",
                "responses": keyed(json!({"200": json_response("The calls, oldest first.", "ActiveCalls")}))
            }},
            "/console/calls/active/{call_id}/commands": {"post": {
                "summary": "Tell a call in progress what to do (scope control).",
                "description": "`hangup`, `hold`, `unhold`, `mute`, `unmute` and `accept` are carried out before the answer; `transfer` is started (202) and its progress comes on the event stream.",
                "parameters": [{
                    "name": "call_id", "in": "path", "required": true,
                    "description": "The Call-ID of either of the call's dialogs, or its record id.",
                    "schema": {"type": "string"}
                }],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallCommand"}}}},
                "responses": keyed(json!({
                    "200": json_response("Done.", "CommandStatus"),
                    "202": json_response("A transfer, started.", "CommandStatus"),
                    "400": error_response("The body does not parse (`bad_request`)."),
                    "404": error_response("No call in progress with that id (`not_found`)."),
                    "409": error_response("Not for the call as it stands (`invalid_state`), or its media is not in the relay (`media_not_anchored`)."),
                    "413": error_response("The body is over 2 MiB (`payload_too_large`)."),
                    "415": error_response("The body is not JSON (`unsupported_media_type`)."),
                    "502": error_response("A phone refused the re-INVITE (`refused`)."),
                    "504": error_response("A phone did not answer in time (`timeout`).")
                }))
            }},
            "/console/calls": {"post": {
                "summary": "Click-to-dial: ring the caller, then connect the callee (scope control).",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["caller", "callee"], "additionalProperties": false,
                    "properties": {
                        "caller": {"type": "string", "description": "The extension rung first."},
                        "callee": {"type": "string", "description": "An extension or a number the routes know."},
                        "record": {"type": ["boolean", "null"]}
                    }
                }}}},
                "responses": keyed(json!({
                    "202": {"description": "Started; progress on the event stream.", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["call_id", "status"],
                        "properties": {"call_id": {"type": "string"}, "status": {"type": "string", "enum": ["started"]}}
                    }}}},
                    "400": error_response("The body does not parse, or a number is not one (`bad_request`)."),
                    "409": error_response("No relay to anchor the call's media (`media_not_anchored`)."),
                    "413": error_response("The body is over 2 MiB (`payload_too_large`)."),
                    "415": error_response("The body is not JSON (`unsupported_media_type`)."),
                    "503": error_response("Shutting down (`unavailable`).")
                }))
            }},
            "/call-api": {"get": {
                "summary": "The JSON-RPC 2.0 call API, over WebSocket (scope control).",
                "description": "Upgrade to WebSocket, then send JSON-RPC 2.0 requests: CallStart, CallEnd, CallHold, CallUnhold, CallBlindTransfer, CallAttendedTransfer (docs/api.md).",
                "parameters": [access_token()],
                "responses": keyed(json!({
                    "101": {"description": "Switching to WebSocket."},
                    "400": error_response("Not a WebSocket upgrade (`bad_request`).")
                }))
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics, text format 0.0.4 (scope read).",
                "responses": keyed(json!({"200": {"description": "The metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}}}))
            }},
            "/api/v1/openapi.json": {"get": {
                "summary": "This document (scope read).",
                "responses": keyed(json!({"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}}}))
            }},
            "/api/v1/events": {"get": {
                "summary": "Live events over a WebSocket (scope read): calls, registrations, extension states.",
                "description": "Each text message is one `Event` as JSON. With `since`, the events after it that are still kept come first (preceded by a `gap` event when some are not), then the live ones. A client that falls behind gets a `lag` event and may reconnect with `since` set to its `resume_since`. The server pings every 30 s and closes with 1001 when the PBX shuts down.",
                "parameters": [
                    {"name": "since", "in": "query", "required": false,
                     "description": "Replay the events after this sequence number first (0: every event kept). Beyond the last event (the PBX restarted): every event kept.",
                     "schema": {"type": "integer", "minimum": 0}},
                    {"name": "types", "in": "query", "required": false,
                     "description": "Only these types, comma-separated: `call`, `registration`, `extension` (gaps and lags always come).",
                     "schema": {"type": "string"}},
                    access_token()
                ],
                "responses": keyed(json!({
                    "101": {"description": "Switching to the WebSocket protocol: the events follow as text messages, each an `Event`.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Event"}}}},
                    "400": error_response("Not a WebSocket handshake, or a parameter does not parse (`bad_request`).")
                }))
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "An API key from `[api] keys`, with scope read, control or admin."
            }},
            "schemas": schemas()
        }
    });
    if let Some(paths) = document["paths"].as_object_mut() {
        for (collection, schema, list_key, id) in [
            ("/console/extensions", "Extension", "extensions", "number"),
            ("/console/sip-trunk", "Trunk", "trunks", "name"),
            ("/console/routing", "Route", "routes", "name"),
        ] {
            let (collection_ops, item_ops) = crud_paths(schema, list_key, id);
            paths.insert(collection.into(), collection_ops);
            paths.insert(format!("{collection}/{{id}}"), item_ops);
        }
        paths.extend(ami_paths());
    }
    document
}

/// The AMI's routes besides the health check.
fn ami_paths() -> serde_json::Map<String, Value> {
    let mut paths = serde_json::Map::new();
    for (what, description) in [
        (
            "trunks",
            "the `[[trunks]]`: added, changed and removed ones apply to calls from then on, their registrations start, restart or stop (unregister)",
        ),
        ("routes", "the `[[routes]]` and the `[[groups]]` they ring"),
        ("acl", "the trunks' `inbound_acl` and `[ami] allows`"),
    ] {
        paths.insert(format!("/ami/v1/reload/{what}"), json!({"post": {
            "summary": format!("Read the configuration file again and apply {description}; calls in progress go on (scope admin, AMI allow-list)."),
            "responses": admin_errors(keyed(json!({
                "200": json_response("What changed.", "ReloadSummary"),
                "400": error_response("The file has faults, each naming its key (`invalid_config`); nothing was applied."),
                "409": error_response("Started without --config (`no_config_file`), or the file drops something entries made through the API use (`invalid_config` lists them as 400).")
            })))
        }}));
    }
    paths.insert("/ami/v1/shutdown".into(), json!({"post": {
        "summary": "Begin a graceful shutdown, as SIGTERM: new calls refused, calls in progress drained (up to shutdown.drain_timeout_secs), then the process exits 0 (scope admin, AMI allow-list).",
        "responses": admin_errors(keyed(json!({
            "202": {"description": "Draining.", "content": {"application/json": {"schema": {
                "type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["draining"]}}
            }}}}
        })))
    }}));
    paths.insert("/ami/v1/dialogs".into(), json!({"get": {
        "summary": "The SIP dialogs the transaction layer holds, raw (scope read, AMI allow-list).",
        "responses": admin_errors(keyed(json!({"200": json_response("The dialogs, by Call-ID.", "Dialogs")})))
    }}));
    paths
}

/// The key of a WebSocket upgrade that cannot send headers (a browser's).
fn access_token() -> Value {
    json!({"name": "access_token", "in": "query", "required": false,
           "description": "The API key, for a WebSocket client that cannot send `Authorization` (RFC 6750 §2.3); only a WebSocket upgrade may carry it.",
           "schema": {"type": "string"}})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Access, ROUTES};

    #[test]
    fn the_document_and_the_route_table_agree() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        for route in ROUTES {
            let operation = &paths[route.path][route.method.to_lowercase()];
            assert!(operation.is_object(), "{route:?} missing");
            let open = operation["security"] == json!([]);
            assert_eq!(open, route.access == Access::Open, "{route:?}");
        }
        for (path, operations) in paths {
            for method in operations.as_object().unwrap().keys() {
                assert!(
                    ROUTES
                        .iter()
                        .any(|r| r.path == path && r.method.eq_ignore_ascii_case(method)),
                    "{method} {path} is documented but not in ROUTES"
                );
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &piece[..piece.find('"').unwrap()];
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{name} is referenced but not defined"
            );
        }
    }
}
