//! `GET /readyz`: whether every media shard is turning its loop.
//!
//! `/healthz` says the process is alive and serving HTTP (liveness).
//! Readiness says it can carry calls: each media shard beats a
//! [`Heartbeat`] every turn of its loop, an idle one too, and a shard
//! whose beat is older than the stall timeout is stuck (a command that
//! takes too long, a thread that died). The answer names such shards.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use axum::{body::Body, http::Request};
//! use sfu::media::Heartbeat;
//! use sfu::ready::{Readiness, router};
//! use std::time::{Duration, Instant};
//! use tower::ServiceExt as _;
//! let shards = vec![Heartbeat::new(Instant::now())];
//! let app = router(Readiness::new(shards, Duration::from_secs(2)));
//! let res = app
//!     .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(res.status(), 200);
//! # }
//! ```

use crate::media::Heartbeat;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `/readyz` checks: every shard's heartbeat against one bound.
#[derive(Debug, Clone)]
pub struct Readiness {
    shards: Arc<[Heartbeat]>,
    stall: Duration,
}

/// A shard that has not turned its loop within the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stalled {
    /// Its index.
    pub shard: usize,
    /// How long since it last turned.
    pub since: Duration,
}

impl Readiness {
    /// Shard i's heartbeat at index i; a shard is stalled once its last
    /// beat is older than `stall`.
    pub fn new(shards: Vec<Heartbeat>, stall: Duration) -> Self {
        Self {
            shards: shards.into(),
            stall,
        }
    }

    /// The stalled shards as of `now`; empty when ready.
    pub fn stalled(&self, now: Instant) -> Vec<Stalled> {
        self.shards
            .iter()
            .enumerate()
            .filter_map(|(shard, h)| {
                let since = h.age(now);
                (since > self.stall).then_some(Stalled { shard, since })
            })
            .collect()
    }
}

/// `GET /readyz` alone: `200 ready` when every shard is turning, else
/// `503` with one line per stalled shard.
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/readyz", get(serve))
        .with_state(readiness)
}

async fn serve(State(readiness): State<Readiness>) -> impl IntoResponse {
    let stalled = readiness.stalled(Instant::now());
    let text = [(CONTENT_TYPE, "text/plain; charset=utf-8")];
    if stalled.is_empty() {
        return (StatusCode::OK, text, "ready\n".to_string());
    }
    let mut body = String::from("not ready\n");
    for s in &stalled {
        let _ = writeln!(
            body,
            "media shard {} stalled: its loop last turned {} ms ago",
            s.shard,
            s.since.as_millis()
        );
    }
    tracing::warn!(stalled = ?stalled.iter().map(|s| s.shard).collect::<Vec<_>>(), "not ready: media shard stalled");
    (StatusCode::SERVICE_UNAVAILABLE, text, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt as _;

    async fn get(app: Router) -> (StatusCode, String) {
        let res = app
            .oneshot(
                Request::get("/readyz")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        let status = res.status();
        let body = to_bytes(res.into_body(), 1 << 16).await.expect("body");
        (status, String::from_utf8(body.to_vec()).expect("utf-8"))
    }

    /// A shard that stops beating is reported by index once its beat is
    /// older than the bound; it is ready again once it turns.
    #[test]
    fn a_shard_that_stops_turning_is_reported() {
        let t0 = Instant::now();
        let shards = vec![Heartbeat::new(t0), Heartbeat::new(t0), Heartbeat::new(t0)];
        let r = Readiness::new(shards.clone(), Duration::from_secs(2));
        assert!(r.stalled(t0 + Duration::from_secs(1)).is_empty());
        // Shards 0 and 2 keep turning; shard 1 stops after t0.
        let later = t0 + Duration::from_secs(5);
        shards[0].beat(later);
        shards[2].beat(later - Duration::from_millis(1500));
        assert_eq!(
            r.stalled(later),
            vec![Stalled {
                shard: 1,
                since: Duration::from_secs(5)
            }]
        );
        shards[1].beat(later);
        assert!(r.stalled(later).is_empty());
    }

    /// Over HTTP: 200 while every shard turns, 503 naming the shard that
    /// stopped.
    #[tokio::test]
    async fn readyz_names_a_stalled_shard() {
        let now = Instant::now();
        let Some(long_ago) = now.checked_sub(Duration::from_secs(60)) else {
            return; // A clock this young cannot show a stall.
        };
        let turning = Heartbeat::new(now);
        let stuck = Heartbeat::new(long_ago);
        let bound = Duration::from_secs(30);
        let (status, body) = get(router(Readiness::new(vec![turning.clone()], bound))).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ready\n"));

        let (status, body) = get(router(Readiness::new(vec![turning, stuck], bound))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.starts_with("not ready\n"), "{body}");
        assert!(body.contains("media shard 1 stalled"), "{body}");
        assert!(!body.contains("media shard 0"), "{body}");
    }
}
