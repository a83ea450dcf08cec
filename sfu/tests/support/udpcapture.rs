//! A UDP relay in front of the SFU's media port, like a 1:1 NAT: clients
//! send to the advertised address, the relay forwards from one socket per
//! client to the SFU, and records every datagram both ways. Loopback only.
//!
//! Optionally it is a lossy link: a drop policy sees every client→SFU
//! datagram and decides whether it is lost. SFU→client is never dropped by
//! the policy. A blackhole cuts every datagram of one client IP, both ways.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Datagrams kept; beyond this the relay still forwards but stops recording.
const MAX_RECORDED: usize = 200_000;

/// Decides for each client→SFU datagram, in arrival order, whether the
/// relay drops it (`true`) instead of forwarding it. It runs on the relay's
/// receive task, so it sees datagrams one at a time and may keep state.
pub type DropPolicy = Box<dyn FnMut(&[u8]) -> bool + Send>;

pub struct UdpCapture {
    recorded: Arc<Mutex<Vec<Vec<u8>>>>,
    dropped: Arc<AtomicU64>,
    blackholed: Arc<Mutex<HashSet<IpAddr>>>,
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
    /// Listens on `public` and relays to `upstream`, losing nothing.
    pub async fn start(public: SocketAddr, upstream: SocketAddr) -> Self {
        Self::start_with(public, upstream, Box::new(|_| false)).await
    }

    /// Listens on `public` and relays to `upstream`, dropping the
    /// client→SFU datagrams `policy` picks. Dropped datagrams are still
    /// recorded (they were on the wire up to the relay) and counted in
    /// [`dropped`](Self::dropped).
    pub async fn start_with(
        public: SocketAddr,
        upstream: SocketAddr,
        mut policy: DropPolicy,
    ) -> Self {
        let front = Arc::new(UdpSocket::bind(public).await.expect("bind public"));
        let _ = socket2::SockRef::from(&*front).set_recv_buffer_size(4 << 20);
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let dropped = Arc::new(AtomicU64::new(0));
        let blackholed: Arc<Mutex<HashSet<IpAddr>>> = Arc::default();
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let main = {
            let recorded = Arc::clone(&recorded);
            let dropped = Arc::clone(&dropped);
            let blackholed = Arc::clone(&blackholed);
            let tasks = Arc::clone(&tasks);
            tokio::spawn(async move {
                let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
                let mut buf = vec![0u8; 2048];
                while let Ok((n, client)) = front.recv_from(&mut buf).await {
                    record(&recorded, &buf[..n]);
                    let cut = blackholed.lock().unwrap().contains(&client.ip());
                    if cut || policy(&buf[..n]) {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let back = match backs.get(&client) {
                        Some(b) => Arc::clone(b),
                        None => {
                            let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
                            let _ = socket2::SockRef::from(&*b).set_recv_buffer_size(4 << 20);
                            let (b2, f2, r2) =
                                (Arc::clone(&b), Arc::clone(&front), Arc::clone(&recorded));
                            let (d2, h2) = (Arc::clone(&dropped), Arc::clone(&blackholed));
                            tasks.lock().unwrap().push(tokio::spawn(async move {
                                let mut buf = vec![0u8; 2048];
                                while let Ok((n, _)) = b2.recv_from(&mut buf).await {
                                    record(&r2, &buf[..n]);
                                    if h2.lock().unwrap().contains(&client.ip()) {
                                        d2.fetch_add(1, Ordering::Relaxed);
                                        continue;
                                    }
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
        Self {
            recorded,
            dropped,
            blackholed,
            tasks,
        }
    }

    /// Cuts (`true`) or restores (`false`) every datagram from and to the
    /// client at `ip`, as a network that loses its route for a while.
    pub fn blackhole(&self, ip: IpAddr, cut: bool) {
        let mut set = self.blackholed.lock().unwrap();
        if cut {
            set.insert(ip);
        } else {
            set.remove(&ip);
        }
    }

    /// Every datagram the relay received so far, both directions, the
    /// dropped ones included.
    pub fn datagrams(&self) -> Vec<Vec<u8>> {
        self.recorded.lock().unwrap().clone()
    }

    /// Datagrams the drop policy or a blackhole has dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn record(recorded: &Mutex<Vec<Vec<u8>>>, d: &[u8]) {
    let mut r = recorded.lock().unwrap();
    if r.len() < MAX_RECORDED {
        r.push(d.to_vec());
    }
}
