//! A UDP relay in front of the SFU's media port, like a 1:1 NAT: clients
//! send to the advertised address, the relay forwards from one socket per
//! client to the SFU, and records every datagram both ways. Loopback only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Datagrams kept; beyond this the relay still forwards but stops recording.
const MAX_RECORDED: usize = 200_000;

pub struct UdpCapture {
    recorded: Arc<Mutex<Vec<Vec<u8>>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Drop for UdpCapture {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

impl UdpCapture {
    /// Listens on `public` and relays to `upstream`.
    pub async fn start(public: SocketAddr, upstream: SocketAddr) -> Self {
        let front = Arc::new(UdpSocket::bind(public).await.expect("bind public"));
        let _ = socket2::SockRef::from(&*front).set_recv_buffer_size(4 << 20);
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let main = {
            let recorded = Arc::clone(&recorded);
            let tasks = Arc::clone(&tasks);
            tokio::spawn(async move {
                let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
                let mut buf = vec![0u8; 2048];
                while let Ok((n, client)) = front.recv_from(&mut buf).await {
                    record(&recorded, &buf[..n]);
                    let back = match backs.get(&client) {
                        Some(b) => Arc::clone(b),
                        None => {
                            let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
                            let _ = socket2::SockRef::from(&*b).set_recv_buffer_size(4 << 20);
                            let (b2, f2, r2) =
                                (Arc::clone(&b), Arc::clone(&front), Arc::clone(&recorded));
                            tasks.lock().unwrap().push(tokio::spawn(async move {
                                let mut buf = vec![0u8; 2048];
                                while let Ok((n, _)) = b2.recv_from(&mut buf).await {
                                    record(&r2, &buf[..n]);
                                    let _ = f2.send_to(&buf[..n], client).await;
                                }
                            }));
                            backs.insert(client, Arc::clone(&b));
                            b
                        }
                    };
                    let _ = back.send_to(&buf[..n], upstream).await;
                }
            })
        };
        tasks.lock().unwrap().push(main);
        Self { recorded, tasks }
    }

    /// Every datagram relayed so far, both directions.
    pub fn datagrams(&self) -> Vec<Vec<u8>> {
        self.recorded.lock().unwrap().clone()
    }
}

fn record(recorded: &Mutex<Vec<Vec<u8>>>, d: &[u8]) {
    let mut r = recorded.lock().unwrap();
    if r.len() < MAX_RECORDED {
        r.push(d.to_vec());
    }
}
