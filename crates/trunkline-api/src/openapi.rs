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

fn schemas() -> Value {
    let nullable_time = json!({"type": ["string", "null"], "format": "date-time"});
    json!({
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
    })
}

/// The whole document.
pub(crate) fn document() -> Value {
    let record_not_found = error_response("No such record (`not_found`).");
    json!({
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
                "description": "Upgrade to WebSocket, then send JSON-RPC 2.0 requests: CallStart, CallEnd, CallHold, CallUnhold, CallBlindTransfer (docs/api.md).",
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
                     "schema": {"type": "string"}}
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
    })
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
