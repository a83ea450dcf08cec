//! The meeting web app at `/`: the page, its script and style sheet, the
//! E2EE worker and the wasm engine, built into `webapp/dist/` by
//! `scripts/webapp-build.sh` and embedded in the binary with
//! `include_bytes!` (docs/webapp.md says why this and not a crate).
//!
//! Every answer carries a strict Content-Security-Policy: scripts, workers,
//! styles and connections only from this server (the signaling WebSocket
//! included), no inline script or style, and `'wasm-unsafe-eval'` so that
//! the worker may compile the engine. Assets revalidate on every load
//! (`no-cache` with an `ETag`): their names are fixed, so an upgraded
//! server is picked up at once while an unchanged one costs a 304.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use axum::{body::Body, http::Request};
//! use tower::ServiceExt as _;
//! let res = sfu::webapp::router(None)
//!     .oneshot(Request::get("/").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(res.status(), 200);
//! assert!(res.headers().contains_key("content-security-policy"));
//! # }
//! ```

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The policy every asset is served with.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; \
    script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; \
    style-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the page may ask the browser for; everything else is off.
const PERMISSIONS_POLICY: &str =
    "camera=(self), microphone=(self), display-capture=(self), geolocation=(), usb=()";

/// One embedded file and where it is served.
#[derive(Debug)]
pub struct Asset {
    /// The URL path.
    pub path: &'static str,
    /// Its path under `webapp/dist/`.
    pub file: &'static str,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:literal) => {
        Asset {
            path: $path,
            file: $file,
            content_type: $type,
            body: include_bytes!(concat!("../../webapp/dist/", $file)),
        }
    };
}

/// Every file of `webapp/dist/` the app needs (a test checks that none is
/// missing).
pub const ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/app.js", "app.js", "text/javascript; charset=utf-8"),
    asset!("/app.css", "app.css", "text/css; charset=utf-8"),
    asset!(
        "/e2ee-worker.js",
        "e2ee-worker.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "/wasm/e2ee_wasm.js",
        "wasm/e2ee_wasm.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "/wasm/e2ee_wasm_bg.wasm",
        "wasm/e2ee_wasm_bg.wasm",
        "application/wasm"
    ),
];

/// `GET` (and `HEAD`) of every asset; merge it with the other routers.
///
/// `token_endpoint` is the operator's token endpoint (`app_token_endpoint`):
/// when it is on another origin, the policy lets the page connect there
/// too. A path on this server needs nothing more.
pub fn router(token_endpoint: Option<&str>) -> Router {
    let policy = policy(token_endpoint);
    ASSETS.iter().fold(Router::new(), |router, asset| {
        let etag = etag(asset.body);
        let policy = policy.clone();
        router.route(
            asset.path,
            get(move |headers: HeaderMap| {
                let (etag, policy) = (etag.clone(), policy.clone());
                async move { serve(asset, etag, policy, &headers) }
            }),
        )
    })
}

/// [`CONTENT_SECURITY_POLICY_VALUE`], with the token endpoint's origin
/// added to `connect-src` when it is an absolute URL.
fn policy(token_endpoint: Option<&str>) -> HeaderValue {
    token_endpoint
        .and_then(endpoint_origin)
        .and_then(|origin| {
            let with = format!("connect-src 'self' {origin};");
            HeaderValue::from_str(&CONTENT_SECURITY_POLICY_VALUE.replacen(
                "connect-src 'self';",
                &with,
                1,
            ))
            .ok()
        })
        .unwrap_or(HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE))
}

/// `scheme://host[:port]` of an absolute http(s) URL; `None` for a path, or
/// for anything that could not stand as one source in the policy.
fn endpoint_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    (!authority.is_empty() && authority.chars().all(plain))
        .then(|| format!("{scheme}://{authority}"))
}

fn serve(
    asset: &'static Asset,
    etag: HeaderValue,
    policy: HeaderValue,
    request: &HeaderMap,
) -> Response {
    let fresh = request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag.to_str().unwrap_or_default() || tag.trim() == "*");
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (ETAG, etag),
        (CONTENT_SECURITY_POLICY, policy),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(PERMISSIONS_POLICY),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    if fresh {
        (StatusCode::NOT_MODIFIED, headers).into_response()
    } else {
        (headers, asset.body).into_response()
    }
}

/// A strong validator: FNV-1a (64 bits) of the bytes, computed once per
/// asset when the router is built.
fn etag(body: &[u8]) -> HeaderValue {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    // 16 hex digits in quotes: always a valid header value.
    HeaderValue::from_str(&format!("\"{hash:016x}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

#[cfg(test)]
mod tests;
