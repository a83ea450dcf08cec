//! Which web pages may open `/rtc`: pages of the server's own origin, the
//! origins the operator lists, and clients that send no `Origin` at all.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use signaling::server::AllowedOrigins;
use testkit::ws::Client;

#[tokio::test]
async fn pages_of_other_origins_are_refused_unless_listed() {
    let srv = Server::start(config()).await;
    let url = format!("ws://{}/rtc", srv.addr);
    let own = format!("http://{}", srv.addr);

    assert_eq!(
        Client::try_connect_from(&url, "https://evil.example")
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        Client::try_connect_from(&url, "null").await.err(),
        Some(403)
    );
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_signaling_refused_total{cap=\"origin\"}"), 2);
    assert_eq!(metric(&m, "sfu_signaling_connections"), 0);

    // The server's own pages, and clients that are not browsers.
    let mut same = Client::try_connect_from(&url, &own).await.unwrap();
    same.ping(1).await;
    let mut native = Client::try_connect(&url).await.unwrap();
    native.ping(2).await;

    let listed = AllowedOrigins::new(["https://app.example"]).unwrap();
    let srv = Server::start(config().with_allowed_origins(listed)).await;
    let url = format!("ws://{}/rtc", srv.addr);
    let mut app = Client::try_connect_from(&url, "https://app.example")
        .await
        .unwrap();
    app.ping(3).await;
    assert_eq!(
        Client::try_connect_from(&url, "https://app.example:8443")
            .await
            .err(),
        Some(403),
        "another port is another origin"
    );
}
