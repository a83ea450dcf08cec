use super::*;
use axum::body::{Body as HttpBody, to_bytes};
use axum::http::Request;
use tower::ServiceExt as _;

fn demo() -> AppApi {
    AppApi::new(Some(TokenKeys::development()), None).expect("api")
}

async fn call(api: &AppApi, req: Request<HttpBody>) -> (StatusCode, String) {
    let res = router(api.clone()).oneshot(req).await.expect("response");
    let status = res.status();
    let body = to_bytes(res.into_body(), 1 << 16).await.expect("body");
    (status, String::from_utf8(body.to_vec()).expect("utf-8"))
}

fn post(body: &str) -> Request<HttpBody> {
    Request::post("/api/demo-token")
        .header("content-type", "application/json")
        .body(HttpBody::from(body.to_owned()))
        .expect("request")
}

fn config() -> Request<HttpBody> {
    Request::get("/api/app-config")
        .body(HttpBody::empty())
        .expect("request")
}

#[tokio::test]
async fn the_config_says_where_tokens_come_from() {
    let (status, body) = call(&demo(), config()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"demoTokens":true,"tokenEndpoint":null}"#);

    let api = AppApi::new(None, Some("https://app.example/token".into())).expect("api");
    let (_, body) = call(&api, config()).await;
    assert_eq!(
        body,
        r#"{"demoTokens":false,"tokenEndpoint":"https://app.example/token"}"#
    );
}

#[tokio::test]
async fn a_demo_token_admits_a_new_guest_to_the_room_asked_for() {
    let api = demo();
    let mut identities = Vec::new();
    for _ in 0..2 {
        let (status, body) = call(&api, post(r#"{"room":" standup ","name":"Ada L."}"#)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let claims = TokenKeys::development()
            .verify_for_room(v["token"].as_str().expect("token"), "standup")
            .expect("a valid token for the room");
        assert_eq!(claims.name, "Ada L.");
        assert_eq!(claims.sub, v["identity"].as_str().expect("identity"));
        assert!(claims.sub.starts_with("guest-"), "{}", claims.sub);
        assert_eq!(claims.grants, Grants::default());
        identities.push(claims.sub);
    }
    assert_ne!(identities[0], identities[1], "every token is a new member");
}

#[tokio::test]
async fn with_a_real_key_there_are_no_demo_tokens() {
    let api = AppApi::new(None, None).expect("api");
    let (status, body) = call(&api, post(r#"{"room":"r","name":"n"}"#)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.contains("token\""), "{body}");
}

#[tokio::test]
async fn bad_requests_are_refused_with_a_reason() {
    let api = demo();
    let long = "x".repeat(MAX_NAME_CHARS + 1);
    let cases = [
        (r#"{"room":"","name":"Ada"}"#.to_owned(), "1 to 64"),
        (r#"{"room":"r","name":"   "}"#.to_owned(), "1 to 64"),
        (format!(r#"{{"room":"{long}","name":"Ada"}}"#), "1 to 64"),
        (r#"{"room":"r","name":"A\u0007da"}"#.to_owned(), "control"),
        (r#"{"room":"r","name":"A\u202eda"}"#.to_owned(), "control"),
        (r#"{"room":"r"}"#.to_owned(), "expected {"),
        (
            r#"{"room":"r","name":"n","admin":true}"#.to_owned(),
            "expected {",
        ),
        ("room=r".to_owned(), "not JSON"),
    ];
    for (body, why) in cases {
        let (status, text) = call(&api, post(&body)).await;
        assert!(status.is_client_error(), "{body}: {status}");
        assert!(text.contains(why), "{body}: {text}");
    }
    let plain = Request::post("/api/demo-token")
        .body(HttpBody::from(r#"{"room":"r","name":"n"}"#))
        .expect("request");
    let (status, text) = call(&api, plain).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(text.contains("application/json"), "{text}");

    let huge = format!(r#"{{"room":"r","name":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
    let (status, _) = call(&api, post(&huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn token_endpoints_are_urls_or_paths() {
    for ok in [
        "https://app.example/token",
        "http://127.0.0.1:9000/t",
        "/token",
    ] {
        assert_eq!(check_endpoint(ok), Ok(()), "{ok}");
    }
    for (bad, err) in [
        ("javascript:alert(1)", EndpointError::Scheme),
        ("//evil.example/t", EndpointError::Scheme),
        ("token", EndpointError::Scheme),
        ("https://a b", EndpointError::Text),
        ("/t\n", EndpointError::Text),
    ] {
        assert_eq!(check_endpoint(bad), Err(err), "{bad}");
    }
    assert_eq!(
        check_endpoint(&format!("https://{}", "a".repeat(MAX_ENDPOINT_BYTES))),
        Err(EndpointError::Text)
    );
}
