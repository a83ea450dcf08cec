//! The sfu records each client's address for signaling's per-address caps:
//! with a cap of two connections per address, a third from 127.0.0.1 is
//! refused with HTTP 429 and counted, and the configured cap (not the
//! default) is the one in force.

use testkit::server::{sfu_with, url};
use testkit::ws::Client;

#[tokio::test]
async fn the_per_address_connection_cap_is_enforced_with_real_addresses() {
    let server = sfu_with(|c| c.limits.max_connections_per_address = 2).await;
    let u = url(&server);
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(Client::try_connect(&u).await.expect("under the cap"));
    }
    assert_eq!(Client::try_connect(&u).await.err(), Some(429));
    let (_, metrics) = testkit::http::get(server.http_addr(), "/metrics").await;
    let refused = testkit::metrics::sample(
        &metrics,
        "sfu_signaling_refused_total{cap=\"connections_per_address\"}",
    );
    assert_eq!(refused, Some(1));
    // One closed, one more fits (once the server has seen it close).
    held.pop();
    let again = testkit::wait::within("a freed place", async {
        loop {
            if let Ok(c) = Client::try_connect(&u).await {
                return c;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    drop(again);
}
