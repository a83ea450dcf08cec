//! The tokio runtime as `webrtc` sees it, with larger UDP socket buffers.
//!
//! `webrtc` binds its UDP sockets itself and hands them to the runtime to
//! wrap, which is the one place their options can be set. The default
//! receive buffer (about 200 KiB on Linux) overflows when several video
//! keyframes or a backlog arrive at once, and a datagram dropped there is
//! lost before NACK can notice when it is at the end of a burst.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::debug;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`TokioRuntime`] with `SO_RCVBUF`/`SO_SNDBUF` set on every UDP socket.
#[derive(Debug)]
pub(super) struct BufferedTokio {
    /// Requested size in bytes; the kernel caps it (`net.core.rmem_max`).
    pub(super) udp_buffer: usize,
}

impl Runtime for BufferedTokio {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let sock = socket2::SockRef::from(&socket);
        // Best effort: a refused size leaves the default, which still works.
        if let Err(error) = sock.set_recv_buffer_size(self.udp_buffer) {
            debug!(%error, "cannot set SO_RCVBUF");
        }
        if let Err(error) = sock.set_send_buffer_size(self.udp_buffer) {
            debug!(%error, "cannot set SO_SNDBUF");
        }
        TokioRuntime.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        TokioRuntime.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> BoxFuture<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        Box::pin(async move { TokioRuntime.connect_tcp(remote_addr).await })
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { TokioRuntime.resolve_host(host).await })
    }

    fn now(&self) -> Instant {
        TokioRuntime.now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        TokioRuntime.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        TokioRuntime.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        TokioRuntime.block_on(future)
    }

    fn yield_now(&self) -> BoxFuture<'static, ()> {
        TokioRuntime.yield_now()
    }

    fn name(&self) -> &'static str {
        "client-sdk tokio"
    }
}
