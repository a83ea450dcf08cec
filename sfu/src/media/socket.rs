//! Setting up the media socket: kernel buffer sizes and the UDP GSO probe.

use crate::config::GsoMode;
use std::net::UdpSocket;

/// What the kernel granted the media socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SocketSetup {
    /// SO_RCVBUF as read back (Linux reports twice the asked size, capped
    /// at `net.core.rmem_max`, for its bookkeeping).
    pub(super) recv_buffer: usize,
    /// SO_SNDBUF as read back.
    pub(super) send_buffer: usize,
    /// Whether sends may carry a UDP_SEGMENT control message.
    pub(super) gso: bool,
}

/// Asks for `buffer_bytes` of kernel buffer each way (0 keeps the defaults)
/// and probes GSO. Failures only lose the optimisation, so they are logged,
/// not returned.
pub(super) fn configure(socket: &UdpSocket, buffer_bytes: usize, gso: GsoMode) -> SocketSetup {
    let sock = socket2::SockRef::from(socket);
    if buffer_bytes > 0 {
        if let Err(e) = sock.set_recv_buffer_size(buffer_bytes) {
            tracing::warn!(error = %e, buffer_bytes, "cannot set the media socket's SO_RCVBUF");
        }
        if let Err(e) = sock.set_send_buffer_size(buffer_bytes) {
            tracing::warn!(error = %e, buffer_bytes, "cannot set the media socket's SO_SNDBUF");
        }
    }
    let setup = SocketSetup {
        recv_buffer: sock.recv_buffer_size().unwrap_or(0),
        send_buffer: sock.send_buffer_size().unwrap_or(0),
        gso: gso == GsoMode::Auto && gso_supported(socket),
    };
    if buffer_bytes > 0 && setup.recv_buffer < buffer_bytes {
        tracing::warn!(
            asked = buffer_bytes,
            granted = setup.recv_buffer,
            "media socket receive buffer capped by the kernel; raise net.core.rmem_max"
        );
    }
    setup
}

/// Whether the kernel knows UDP_SEGMENT (Linux 4.18 and later). Reading the
/// option leaves the socket's default segment size (0: none) untouched, so
/// only sends that carry the control message are segmented. Whether the
/// route's device can take it shows only when sending; the sender falls
/// back then.
pub(super) fn gso_supported(socket: &UdpSocket) -> bool {
    nix::sys::socket::getsockopt(socket, nix::sys::socket::sockopt::UdpGsoSegment).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_raised_and_gso_follows_the_mode() {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let default = configure(&socket, 0, GsoMode::Off);
        assert!(!default.gso);
        let raised = configure(&socket, 1 << 20, GsoMode::Auto);
        // Linux doubles what it grants; either way it grew unless capped
        // below the default.
        assert!(raised.recv_buffer >= default.recv_buffer.min(1 << 20));
        assert_eq!(raised.gso, gso_supported(&socket));
        if cfg!(target_os = "linux") {
            assert!(raised.gso, "Linux >= 4.18 has UDP GSO");
        }
    }
}
