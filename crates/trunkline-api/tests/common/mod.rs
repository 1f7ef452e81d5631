//! What the API's test binaries share.

/// The call-control methods of a `Pbx` whose calls take no commands:
/// call control is tested end to end against the binary and phones
/// (`tests/call_api.rs` at the workspace root).
macro_rules! no_call_control {
    () => {
        fn command<'a>(
            &'a self,
            _: &'a str,
            _: trunkline_engine::CallCommand,
        ) -> trunkline_api::CommandFuture<'a> {
            Box::pin(async { Err(trunkline_engine::CommandError::NoSuchCall) })
        }
        fn attended_transfer<'a>(
            &'a self,
            _: (&'a str, trunkline_engine::CallSide),
            _: (&'a str, trunkline_engine::CallSide),
        ) -> trunkline_api::CommandFuture<'a> {
            Box::pin(async { Err(trunkline_engine::CommandError::NoSuchCall) })
        }
        fn has_call(&self, _: &str) -> bool {
            false
        }
        fn originate(
            &self,
            _: trunkline_engine::Originate,
        ) -> Result<String, trunkline_engine::CommandError> {
            Err(trunkline_engine::CommandError::ShuttingDown)
        }
        fn call_events(&self) -> tokio::sync::broadcast::Receiver<trunkline_engine::CallEvent> {
            tokio::sync::broadcast::channel(1).1
        }
    };
}

pub(crate) use no_call_control;
