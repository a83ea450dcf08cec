//! The HTTP server's timeouts and connection caps: what keeps slow or
//! numerous connections (slow-loris) from using up the server's file
//! descriptors.

use super::duration;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// File descriptors kept out of `http_max_connections` when the process's
/// descriptor limit is low: the media sockets, the listener, logs, /proc
/// reads and the runtime's own.
pub const RESERVED_FDS: u64 = 128;

/// Timeouts and connection caps of the HTTP/WebSocket listener.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[command(next_help_heading = "HTTP connections")]
#[serde(default)]
#[non_exhaustive]
pub struct Http {
    /// How long a client has to send a complete request head, counted from
    /// when the server starts waiting for it: the connection's opening, or
    /// the end of the previous response on a keep-alive connection. A
    /// connection that runs out of it is closed.
    #[arg(long, env = "SFU_HTTP_HEADER_TIMEOUT", value_name = "DURATION")]
    #[arg(default_value = "10s", value_parser = duration::parse_secs)]
    #[serde(with = "duration::secs")]
    pub http_header_timeout: Duration,

    /// How long a WebSocket upgrade may take once its request head has
    /// arrived, until the connection is a WebSocket; past it the
    /// connection is closed.
    #[arg(long, env = "SFU_HTTP_HANDSHAKE_TIMEOUT", value_name = "DURATION")]
    #[arg(default_value = "10s", value_parser = duration::parse_secs)]
    #[serde(with = "duration::secs")]
    pub http_handshake_timeout: Duration,

    /// How long an HTTP connection (not a WebSocket) may go without a byte
    /// moving either way (a stalled request body, an unread response, an
    /// idle keep-alive) before it is closed.
    #[arg(long, env = "SFU_HTTP_IDLE_TIMEOUT", value_name = "DURATION")]
    #[arg(default_value = "30s", value_parser = duration::parse_secs)]
    #[serde(with = "duration::secs")]
    pub http_idle_timeout: Duration,

    /// Most open HTTP and WebSocket connections; more are closed as soon as
    /// they are accepted. Lowered at start to the file-descriptor limit
    /// less 128 when that is smaller.
    #[arg(long, env = "SFU_HTTP_MAX_CONNECTIONS", value_name = "N")]
    #[arg(default_value_t = 16384)]
    pub http_max_connections: usize,

    /// Most open HTTP and WebSocket connections from one client address
    /// (IPv6: one /64 network); more are closed as soon as they are
    /// accepted. Clients behind one NAT share an address. Above
    /// signaling's own per-address WebSocket cap (1000), so that cap's clear
    /// HTTP 429 is what a well-behaved crowd behind one address meets first.
    #[arg(long, env = "SFU_HTTP_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    #[arg(default_value_t = 1024)]
    pub http_max_connections_per_address: usize,

    /// Web origins whose pages may open the signaling WebSocket (/rtc),
    /// besides pages this server serves itself: each scheme://host[:port]
    /// exactly as browsers send it, comma-separated, or * for any page. A
    /// client that sends no Origin header (not a browser) is always let in;
    /// its access token is what admits it.
    #[arg(long, env = "SFU_ALLOWED_ORIGINS", value_name = "ORIGINS")]
    #[arg(value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,

    /// Where the web app served at / gets access tokens: an http(s) URL or
    /// a path on this server. The app POSTs {"room", "name"} (JSON) there
    /// and expects {"token"} back (see docs/webapp.md). Unset: the app
    /// takes a token from its URL, or, on a server using the development
    /// key, from /api/demo-token.
    #[arg(long, env = "SFU_APP_TOKEN_ENDPOINT", value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_token_endpoint: Option<String>,
}
