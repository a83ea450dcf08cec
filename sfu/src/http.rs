//! The HTTP side: `GET /metrics` merged with the signaling router
//! (`/rtc`, `/healthz`, `/admin/*`), and the server that serves it
//! ([`serve`]) with its connection caps ([`Admission`]) and timeouts.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use axum::{Router, body::Body, http::Request};
//! use sfu::metrics::{Metrics, shared_stats};
//! use tower::ServiceExt as _;
//! let app = sfu::http::app(Metrics::new(shared_stats()), Router::new());
//! let res = app
//!     .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(res.status(), 200);
//! # }
//! ```

mod admission;
mod server;
mod tracked_io;

pub use admission::{Admission, Closed, HttpStats, Refusal, Slot, address_key};
pub use server::{Timeouts, serve};

use crate::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

/// Content type of the Prometheus text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The whole HTTP app: `signaling`'s routes plus `GET /metrics`.
pub fn app(metrics: Metrics, signaling: Router) -> Router {
    signaling.merge(metrics_router(metrics))
}

/// `GET /metrics` alone.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(metrics)
}

async fn serve_metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    // Rendering reads a few small /proc files; cheap enough to do inline.
    ([(CONTENT_TYPE, METRICS_CONTENT_TYPE)], metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::shared_stats;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn metrics_are_served_with_the_prometheus_content_type() {
        let stats = shared_stats();
        stats.lock().expect("lock").datagrams_in = 42;
        let signaling = Router::new().route("/healthz", get(|| async { "ok" }));
        let app = app(Metrics::new(stats), signaling);

        let res = app
            .clone()
            .oneshot(
                Request::get("/metrics")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[CONTENT_TYPE], METRICS_CONTENT_TYPE);
        let body = to_bytes(res.into_body(), 1 << 20).await.expect("body");
        let text = String::from_utf8(body.to_vec()).expect("utf-8");
        assert!(
            text.contains("\nsfu_media_datagrams_received_total 42\n"),
            "{text}"
        );

        let res = app
            .clone()
            .oneshot(
                Request::get("/healthz")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(res.status(), StatusCode::OK, "signaling routes are merged");

        let res = app
            .oneshot(
                Request::post("/metrics")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
