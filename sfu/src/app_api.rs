//! What the web app asks the server before it joins: `GET /api/app-config`
//! says where to get an access token, and `POST /api/demo-token` mints one
//! for a try-out server.
//!
//! A token admits one identity to one room, so minting one for anyone who
//! asks is only right where anyone may mint one anyway: with the public
//! development key, which the server accepts on loopback addresses only.
//! With a real key the demo endpoint is off (404), and the app takes a
//! token from its URL or from the operator's own token endpoint
//! (`app_token_endpoint`), which decides who may join what.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use axum::{body::Body, http::Request};
//! use signaling::token::TokenKeys;
//! use sfu::app_api::{AppApi, router};
//! use tower::ServiceExt as _;
//! let api = AppApi::new(Some(TokenKeys::development()), None).unwrap();
//! let res = router(api)
//!     .oneshot(
//!         Request::post("/api/demo-token")
//!             .header("content-type", "application/json")
//!             .body(Body::from(r#"{"room":"standup","name":"Ada"}"#))
//!             .unwrap(),
//!     )
//!     .await
//!     .unwrap();
//! assert_eq!(res.status(), 200);
//! # }
//! ```

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, extract::FromRequest};
use serde::{Deserialize, Serialize};
use signaling::token::{Grants, TokenKeys, claim_ok};
use std::sync::Arc;
use std::time::Duration;

/// How long a demo token is valid: long enough for a meeting; a page that
/// rejoins later asks for a new one.
const DEMO_TOKEN_TTL: Duration = Duration::from_secs(4 * 3600);

/// Longest room or display name the join screen may ask for, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Longest `app_token_endpoint`, in bytes.
const MAX_ENDPOINT_BYTES: usize = 2048;

/// Largest request body `POST /api/demo-token` reads.
const MAX_BODY_BYTES: usize = 1024;

/// Why an `app_token_endpoint` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    /// Not `https://…`, `http://…` or a path starting with `/`.
    #[error("app_token_endpoint must be an http(s) URL or a path starting with '/'")]
    Scheme,
    /// Whitespace, a control character, or too long.
    #[error("app_token_endpoint holds whitespace or control characters, or is over 2048 bytes")]
    Text,
}

/// The web app's view of the server's token policy.
#[derive(Clone)]
pub struct AppApi {
    inner: Arc<Inner>,
}

struct Inner {
    /// The development keys, when demo tokens are on.
    demo: Option<TokenKeys>,
    token_endpoint: Option<String>,
}

impl std::fmt::Debug for AppApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppApi")
            .field("demo_tokens", &self.inner.demo.is_some())
            .field("token_endpoint", &self.inner.token_endpoint)
            .finish()
    }
}

impl AppApi {
    /// `demo`: the keys to mint demo tokens with, given only when the
    /// server runs on the development key. `token_endpoint`: where the app
    /// gets tokens otherwise.
    pub fn new(
        demo: Option<TokenKeys>,
        token_endpoint: Option<String>,
    ) -> Result<Self, EndpointError> {
        if let Some(e) = &token_endpoint {
            check_endpoint(e)?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                demo,
                token_endpoint,
            }),
        })
    }

    /// Whether `POST /api/demo-token` mints tokens.
    pub fn demo_tokens(&self) -> bool {
        self.inner.demo.is_some()
    }
}

/// Whether `e` is a usable `app_token_endpoint`.
pub(crate) fn check_endpoint(e: &str) -> Result<(), EndpointError> {
    if e.len() > MAX_ENDPOINT_BYTES || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EndpointError::Text);
    }
    let path = e.starts_with('/') && !e.starts_with("//");
    if path || e.starts_with("https://") || e.starts_with("http://") {
        Ok(())
    } else {
        Err(EndpointError::Scheme)
    }
}

/// `GET /api/app-config` and `POST /api/demo-token`.
pub fn router(api: AppApi) -> Router {
    Router::new()
        .route("/api/app-config", get(app_config))
        .route(
            "/api/demo-token",
            post(demo_token).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(api)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppConfig<'a> {
    demo_tokens: bool,
    token_endpoint: Option<&'a str>,
}

async fn app_config(State(api): State<AppApi>) -> Response {
    let body = Json(AppConfig {
        demo_tokens: api.demo_tokens(),
        token_endpoint: api.inner.token_endpoint.as_deref(),
    });
    ([(header::CACHE_CONTROL, "no-store")], body).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoRequest {
    room: String,
    name: String,
}

#[derive(Serialize)]
struct DemoToken {
    token: String,
    identity: String,
}

/// A JSON body, or a plain 400 that says what was wrong with it (never
/// echoing the body).
struct Body(DemoRequest);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        match Json::<DemoRequest>::from_request(req, state).await {
            Ok(Json(r)) => Ok(Self(r)),
            Err(e) => Err(refuse(e.status(), rejection_text(&e))),
        }
    }
}

fn rejection_text(e: &JsonRejection) -> &'static str {
    match e {
        JsonRejection::MissingJsonContentType(_) => "expected content-type: application/json",
        JsonRejection::JsonSyntaxError(_) => "the body is not JSON",
        JsonRejection::JsonDataError(_) => "expected {\"room\": string, \"name\": string}",
        _ => "unreadable request body",
    }
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], why).into_response()
}

/// A room or display name the join screen may ask for: trimmed, 1 to
/// [`MAX_NAME_CHARS`] characters, and fit for a token claim.
fn clean(v: &str) -> Option<&str> {
    let v = v.trim();
    let chars = v.chars().count();
    ((1..=MAX_NAME_CHARS).contains(&chars) && claim_ok(v)).then_some(v)
}

async fn demo_token(State(api): State<AppApi>, body: Result<Body, Response>) -> Response {
    // Off: as if the route did not exist, before looking at the body.
    let Some(keys) = &api.inner.demo else {
        return refuse(StatusCode::NOT_FOUND, "demo tokens are off on this server");
    };
    let Body(req) = match body {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let (Some(room), Some(name)) = (clean(&req.room), clean(&req.name)) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "room and name must be 1 to 64 characters, without control characters",
        );
    };
    // A fresh identity each time: two tabs with the same display name are
    // two members, and a token names nobody who did not ask for it.
    let identity = format!("guest-{:016x}", rand::random::<u64>());
    let ttl = DEMO_TOKEN_TTL.min(keys.max_lifetime());
    match keys.mint(room, &identity, name, Grants::default(), ttl) {
        Ok(token) => {
            tracing::debug!(%identity, "demo token minted");
            let body = Json(DemoToken { token, identity });
            ([(header::CACHE_CONTROL, "no-store")], body).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot mint a demo token");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "cannot mint a token")
        }
    }
}

#[cfg(test)]
mod tests;
