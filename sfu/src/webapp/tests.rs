use super::*;
use axum::body::{Body, to_bytes};
use axum::http::Request;
use std::collections::BTreeSet;
use std::path::Path;
use tower::ServiceExt as _;

async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    router(None)
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("response")
}

#[tokio::test]
async fn every_asset_is_served_with_its_type_policy_and_validator() {
    for asset in ASSETS {
        let res = get(asset.path, &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{}", asset.path);
        let h = res.headers();
        assert_eq!(h[CONTENT_TYPE], asset.content_type, "{}", asset.path);
        assert_eq!(h[CACHE_CONTROL], "no-cache");
        assert_eq!(h[X_CONTENT_TYPE_OPTIONS], "nosniff");
        let csp = h[CONTENT_SECURITY_POLICY].to_str().expect("text");
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval';"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let etag = h[ETAG].to_str().expect("text").to_owned();
        let body = to_bytes(res.into_body(), 16 << 20).await.expect("body");
        assert_eq!(&body[..], asset.body, "{}", asset.path);

        let res = get(asset.path, &[("if-none-match", &etag)]).await;
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED, "{}", asset.path);
        assert!(
            to_bytes(res.into_body(), 1024)
                .await
                .expect("body")
                .is_empty()
        );
        let res = get(asset.path, &[("if-none-match", "\"0000000000000000\"")]).await;
        assert_eq!(res.status(), StatusCode::OK, "another version is sent");
    }
    let wasm = get("/wasm/e2ee_wasm_bg.wasm", &[]).await;
    assert_eq!(wasm.headers()[CONTENT_TYPE], "application/wasm");
    let body = to_bytes(wasm.into_body(), 16 << 20).await.expect("body");
    assert!(body.starts_with(b"\0asm"), "a wasm module");
}

#[tokio::test]
async fn unknown_paths_and_other_methods_are_refused() {
    for path in [
        "/index.html",
        "/dist/app.js",
        "/wasm/",
        "/BUILD-INFO",
        "/../Cargo.toml",
    ] {
        assert_eq!(
            get(path, &[]).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let res = router(None)
        .oneshot(Request::post("/").body(Body::empty()).expect("request"))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

/// A file added to the build but not to [`ASSETS`] would be missing from
/// the binary: the table must list every file of `webapp/dist/` (except
/// the build's notes).
#[test]
fn the_table_lists_every_built_file() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../webapp/dist");
    let mut on_disk = BTreeSet::new();
    let mut dirs = vec![dist.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("webapp/dist") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path.strip_prefix(&dist).expect("under dist");
                on_disk.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    on_disk.remove("BUILD-INFO");
    let listed: BTreeSet<String> = ASSETS.iter().map(|a| a.file.to_owned()).collect();
    assert_eq!(on_disk, listed);
}

#[tokio::test]
async fn a_token_endpoint_elsewhere_is_added_to_connect_src() {
    let csp = |endpoint: Option<&'static str>| async move {
        let res = router(endpoint)
            .oneshot(Request::get("/").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        res.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("text")
            .to_owned()
    };
    assert!(csp(None).await.contains("; connect-src 'self'; "));
    assert!(
        csp(Some("/sfu-token"))
            .await
            .contains("; connect-src 'self'; ")
    );
    let other = csp(Some("https://app.example:8443/sfu/token?x=1")).await;
    assert!(
        other.contains("; connect-src 'self' https://app.example:8443; "),
        "{other}"
    );
    assert!(other.starts_with("default-src 'none'; script-src 'self' 'wasm-unsafe-eval';"));
    // Nothing that could end the directive or add another source.
    for odd in [
        "https://a.example;script-src *",
        "https://a.example,b",
        "ftp://a.example",
    ] {
        assert!(
            csp(Some(odd)).await.contains("; connect-src 'self'; "),
            "{odd}"
        );
    }
}
