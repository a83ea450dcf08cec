//! A WebSocket proxy between clients and the signaling server, standing in
//! for the network path an operator controls. It records every message in
//! both directions, can sever connections (a network blip), and lets a test
//! rewrite, drop or inject server messages (a malicious server).

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// One recorded text message.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The connection, numbered from 0 in accept order.
    pub conn: u64,
    /// Which way it went.
    pub dir: Dir,
    /// The message as relayed (after any hook).
    pub text: String,
}

/// Decides what reaches the client: return the messages to deliver in
/// place of `text` (empty to drop it).
pub type ToClientHook = Box<dyn FnMut(u64, &str) -> Vec<String> + Send>;

/// Rewrites a client → server message.
pub type ToServerHook = Box<dyn FnMut(u64, &str) -> String + Send>;

struct Conn {
    tasks: Vec<JoinHandle<()>>,
    inject: mpsc::UnboundedSender<String>,
}

#[derive(Default)]
struct Inner {
    log: Mutex<Vec<Captured>>,
    conns: Mutex<HashMap<u64, Conn>>,
    hook: Mutex<Option<ToClientHook>>,
    up_hook: Mutex<Option<ToServerHook>>,
    /// Participant id per connection, from the server's `joined`.
    participants: Mutex<HashMap<u64, String>>,
}

/// The proxy. Dropping it stops accepting; open connections end with it.
pub struct WsProxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: JoinHandle<()>,
}

impl Drop for WsProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for (_, conn) in self.inner.conns.lock().expect("proxy lock").drain() {
            for t in conn.tasks {
                t.abort();
            }
        }
    }
}

impl WsProxy {
    /// Listens on 127.0.0.1 and relays to `upstream` (a ws:// URL).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(Inner::default());
        let next = Arc::new(AtomicU64::new(0));
        let accept = {
            let inner = Arc::clone(&inner);
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    let inner = Arc::clone(&inner);
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
                            return;
                        };
                        let Ok((server, _)) = tokio_tungstenite::connect_async(&upstream).await
                        else {
                            return;
                        };
                        relay(id, client, server, inner);
                    });
                }
            })
        };
        Self {
            addr,
            inner,
            accept,
        }
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("ws://{}/rtc", self.addr)
    }

    /// Everything relayed so far.
    pub fn captured(&self) -> Vec<Captured> {
        self.inner.log.lock().expect("proxy lock").clone()
    }

    /// Installs a hook on server → client messages.
    pub fn set_hook(&self, hook: ToClientHook) {
        *self.inner.hook.lock().expect("proxy lock") = Some(hook);
    }

    /// Installs a hook on client → server messages.
    pub fn set_up_hook(&self, hook: ToServerHook) {
        *self.inner.up_hook.lock().expect("proxy lock") = Some(hook);
    }

    /// The connection whose `joined` named `participant_id`.
    pub fn conn_of(&self, participant_id: &str) -> Option<u64> {
        self.inner
            .participants
            .lock()
            .unwrap()
            .iter()
            .find(|(_, p)| *p == participant_id)
            .map(|(c, _)| *c)
    }

    /// Sends `text` to the client of `conn` as if the server had.
    pub fn inject(&self, conn: u64, text: String) {
        if let Some(c) = self.inner.conns.lock().expect("proxy lock").get(&conn) {
            let _ = c.inject.send(text);
        }
    }

    /// Cuts a connection in both directions, like a network failure.
    pub fn sever(&self, conn: u64) {
        if let Some(c) = self.inner.conns.lock().expect("proxy lock").remove(&conn) {
            for t in c.tasks {
                t.abort();
            }
        }
    }
}

type Ws<S> = tokio_tungstenite::WebSocketStream<S>;

fn relay<C, S>(id: u64, client: Ws<C>, server: Ws<S>, inner: Arc<Inner>)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut client_tx, mut client_rx) = client.split();
    let (mut server_tx, mut server_rx) = server.split();
    let (inject_tx, mut inject_rx) = mpsc::unbounded_channel::<String>();
    let up = {
        let inner = Arc::clone(&inner);
        tokio::spawn(async move {
            while let Some(Ok(mut msg)) = client_rx.next().await {
                if let Message::Text(t) = &msg {
                    let text = match inner.up_hook.lock().expect("proxy lock").as_mut() {
                        Some(hook) => hook(id, t),
                        None => t.to_string(),
                    };
                    inner.log.lock().expect("proxy lock").push(Captured {
                        conn: id,
                        dir: Dir::ToServer,
                        text: text.clone(),
                    });
                    msg = Message::Text(text.into());
                }
                let close = matches!(msg, Message::Close(_));
                if server_tx.send(msg).await.is_err() || close {
                    break;
                }
            }
        })
    };
    let down = {
        let inner = Arc::clone(&inner);
        tokio::spawn(async move {
            loop {
                let text = tokio::select! {
                    msg = server_rx.next() => match msg {
                        Some(Ok(Message::Text(t))) => t.to_string(),
                        Some(Ok(Message::Close(f))) => {
                            let _ = client_tx.send(Message::Close(f)).await;
                            break;
                        }
                        Some(Ok(other)) => {
                            if client_tx.send(other).await.is_err() { break; }
                            continue;
                        }
                        _ => break,
                    },
                    Some(t) = inject_rx.recv() => {
                        if client_tx.send(Message::Text(t.into())).await.is_err() { break; }
                        continue;
                    }
                };
                inner.log.lock().expect("proxy lock").push(Captured {
                    conn: id,
                    dir: Dir::ToClient,
                    text: text.clone(),
                });
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                    && v["type"] == "joined"
                    && let Some(pid) = v["participant_id"].as_str()
                {
                    inner
                        .participants
                        .lock()
                        .unwrap()
                        .insert(id, pid.to_owned());
                }
                let out = match inner.hook.lock().expect("proxy lock").as_mut() {
                    Some(hook) => hook(id, &text),
                    None => vec![text],
                };
                for t in out {
                    if client_tx.send(Message::Text(t.into())).await.is_err() {
                        return;
                    }
                }
            }
        })
    };
    inner.conns.lock().expect("proxy lock").insert(
        id,
        Conn {
            tasks: vec![up, down],
            inject: inject_tx,
        },
    );
}
