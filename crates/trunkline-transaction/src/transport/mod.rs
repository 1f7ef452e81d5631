//! Transports: the tokio glue between sockets and the sans-IO core.
