//! The signaling server: WebSocket sessions on `GET /rtc`, the admin REST
//! API, health, metrics rendering and graceful shutdown.
//!
//! The `sfu` binary builds a [`Signaling`] from a [`SignalingConfig`] and its
//! media plane, mounts [`app`], merges its own `/metrics` route (calling
//! [`Signaling::render_metrics`]) and calls [`Signaling::shutdown`] on
//! SIGTERM.
//!
//! ```
//! use signaling::media::{MediaRequest, MediaSink};
//! use signaling::server::{app, Signaling, SignalingConfig};
//! use std::sync::Arc;
//!
//! struct NoMedia;
//! impl MediaSink for NoMedia {
//!     fn command(&self, _request: MediaRequest) -> bool { true }
//! }
//!
//! let sig = Signaling::new(SignalingConfig::default(), Arc::new(NoMedia));
//! let router: axum::Router = app(sig.clone());
//! let mut metrics = String::new();
//! sig.render_metrics(&mut metrics);
//! assert!(metrics.contains("sfu_rooms 0"));
//! # drop(router);
//! // On SIGTERM:
//! sig.shutdown();
//! ```
//!
//! Inside, each connection runs one task (`ws.rs`) that drives a sans-IO
//! session state machine (`session/`). Rooms live in a registry (`rooms/`)
//! where every change, with its media command and broadcasts, happens under
//! the room's lock; each room is also the MLS delivery service for its group
//! ([`delivery_log`]: an ordered, bounded log, one commit per epoch, each
//! checked against the group's public state and the room's roster). Room events, MLS entries and media events reach a participant
//! through its outbox (`outbox.rs`), which outlives a lost connection for
//! the resume grace period.

mod admin;
mod allowances;
mod budget;
mod caps;
mod config;
pub mod delivery_log;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod ids;
mod limits;
mod metrics;
mod origin;
mod outbox;
mod quota;
mod rooms;
mod session;
mod state;
mod ws;

pub use caps::SizeCaps;
pub use config::{Capacity, MessageRates, RateLimit, SignalingConfig};
pub use origin::{AllowedOrigins, BadOrigin};

use crate::media::MediaSink;
use axum::Extension;
use axum::Router;
use axum::extract::{ConnectInfo, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::Cap;
use quota::AddrKey;
use serde::Deserialize;
use state::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The signaling server's state: config, media plane, rooms and counters.
/// Cheap to clone; every clone is the same server.
#[derive(Debug, Clone)]
pub struct Signaling {
    shared: Arc<Shared>,
}

impl Signaling {
    /// A server that drives `media` through [`sfu_core::MediaCommand`]s.
    pub fn new(config: SignalingConfig, media: Arc<dyn MediaSink>) -> Self {
        Self {
            shared: Arc::new(Shared::new(config, media)),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &SignalingConfig {
        &self.shared.config
    }

    /// Appends the signaling metrics in Prometheus text format: gauges
    /// `sfu_rooms`, `sfu_participants`, `sfu_signaling_tracks`,
    /// `sfu_signaling_connections`, `sfu_signaling_suspended_participants`,
    /// `sfu_signaling_mls_log_entries`, `sfu_signaling_mls_log_bytes`,
    /// `sfu_signaling_mls_key_packages`; counters
    /// `sfu_signaling_messages_total`, `sfu_signaling_errors_total{code}`,
    /// `sfu_joins_total`, `sfu_leaves_total{reason}`,
    /// `sfu_signaling_slow_consumers_total`,
    /// `sfu_signaling_mls_entries_total{kind}`,
    /// `sfu_signaling_mls_bytes_total`,
    /// `sfu_signaling_mls_commits_rejected_total`,
    /// `sfu_signaling_mls_refused_total{reason}`,
    /// `sfu_signaling_mls_founders_replaced_total`,
    /// `sfu_signaling_resumes_total`; and for the limits (see
    /// [`SignalingConfig`]) the gauges `sfu_signaling_outbound_bytes` and
    /// `sfu_signaling_rate_allowances` and the counters
    /// `sfu_signaling_oversize_total{field}`,
    /// `sfu_signaling_rate_limited_total{kind}` and
    /// `sfu_signaling_refused_total{cap}`.
    pub fn render_metrics(&self, out: &mut String) {
        self.shared.metrics.render(self.shared.gauges(), out);
    }

    /// Starts a graceful shutdown: new joins and upgrades are refused, and
    /// every open session gets `error{unavailable}` and (if joined)
    /// `closed{room_closed}`, leaves its room and closes. Returns at once;
    /// await [`Signaling::wait_idle`] to know when all are closed.
    pub fn shutdown(&self) {
        tracing::info!("signaling shutting down");
        self.shared.shutdown();
    }

    /// Whether [`Signaling::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.is_shutting_down()
    }

    /// Resolves when no WebSocket connection is open and no suspended
    /// participant waits for a resume (shutdown ends those at once).
    /// Combine it with a timeout after [`Signaling::shutdown`].
    pub async fn wait_idle(&self) {
        self.shared.idle().await;
    }

    /// Open WebSocket connections.
    pub fn connections(&self) -> usize {
        self.shared.connections()
    }
}

/// The router: `GET /rtc` (WebSocket), `GET /healthz`, and the admin API
/// under `/admin` (see `docs/protocol.md`). It does not serve `/metrics`;
/// merge your own route that calls [`Signaling::render_metrics`].
pub fn app(sig: Signaling) -> Router {
    Router::new()
        .route("/rtc", get(rtc))
        .route("/healthz", get(healthz))
        .merge(admin::routes())
        .with_state(sig)
}

async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Deserialize)]
struct RtcQuery {
    /// If given, the token must be for this room.
    room: Option<String>,
}

/// The client's address as the server's accept loop recorded it
/// (`into_make_service_with_connect_info::<SocketAddr>`), reduced to the
/// key the per-address caps count by. Without it only the server-wide caps
/// apply, which is said once in the log.
fn client_addr(peer: Option<Extension<ConnectInfo<SocketAddr>>>) -> Option<AddrKey> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let addr = peer.map(|Extension(ConnectInfo(a))| AddrKey::of(a.ip()));
    if addr.is_none() && !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "the HTTP server does not record client addresses (ConnectInfo): \
             per-address limits are off"
        );
    }
    addr
}

async fn rtc(
    State(sig): State<Signaling>,
    Query(q): Query<RtcQuery>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if sig.is_shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let origins = &sig.shared.config.allowed_origins;
    if !origins.admits_headers(headers.get(header::ORIGIN), headers.get(header::HOST)) {
        sig.shared.metrics.refused(Cap::Origin);
        tracing::info!(
            origin = ?headers.get(header::ORIGIN),
            "WebSocket from a page of an origin not allowed"
        );
        return (StatusCode::FORBIDDEN, "this page's origin may not connect").into_response();
    }
    let addr = client_addr(peer);
    let slot = match sig.shared.admit(addr) {
        Ok(slot) => slot,
        Err(cap) => {
            sig.shared.metrics.refused(cap);
            tracing::info!(cap = cap.label(), "connection refused");
            return match cap {
                Cap::ConnectionsPerAddress | Cap::ConnectRate => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many connections from your address",
                ),
                _ => (StatusCode::SERVICE_UNAVAILABLE, "server is at capacity"),
            }
            .into_response();
        }
    };
    let limit = ws::transport_limit(sig.shared.config.max_message_bytes);
    let shared = sig.shared;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| ws::run(socket, shared, q.room, addr, slot))
}
