//! Configuration of a [`Participant`](crate::transport::Participant) and of a bare [`Peer`](crate::transport::Peer).

use crate::codec::Codec;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// A STUN or TURN server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IceServer {
    /// `stun:` / `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    pub username: String,
    /// TURN credential.
    pub credential: String,
}

impl IceServer {
    /// A server reachable at these URLs, without credentials.
    pub fn new(urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            urls: urls.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// Which local addresses ICE gathers host candidates on.
///
/// `webrtc` 0.21 binds one UDP socket per address given to it. A wildcard
/// (the default, `local_ips: None`) expands to every local interface *except
/// loopback and link-local*, so a peer on `127.0.0.1` is unreachable unless
/// loopback is added explicitly — which `include_loopback` does. Its
/// `SettingEngine` has an `include_loopback_candidate` flag too, but in 0.21
/// nothing reads it; the SDK still sets it, for when something does.
/// The interface and IP filters of older webrtc-rs versions do not exist in
/// 0.21; `local_ips` is how to restrict gathering.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IceOptions {
    /// Also gather a host candidate on `127.0.0.1`. Default `true`, so a
    /// client and an SFU on one machine (tests, local development) connect.
    /// Ignored when `local_ips` is set.
    pub include_loopback: bool,
    /// Gather only on exactly these local addresses, or on every usable
    /// interface when `None` (the default).
    pub local_ips: Option<Vec<IpAddr>>,
    /// STUN/TURN servers. None by default: the SFU is ICE-lite with a public
    /// host candidate, so host candidates suffice.
    pub servers: Vec<IceServer>,
}

impl Default for IceOptions {
    fn default() -> Self {
        Self {
            include_loopback: true,
            local_ips: None,
            servers: Vec::new(),
        }
    }
}

impl IceOptions {
    /// Gather only on `127.0.0.1`: no other interface is touched or advertised.
    pub fn loopback_only() -> Self {
        Self {
            include_loopback: true,
            local_ips: Some(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]),
            servers: Vec::new(),
        }
    }

    /// The socket addresses to bind, in the form `webrtc` expects.
    pub(crate) fn bind_addrs(&self) -> Vec<SocketAddr> {
        match &self.local_ips {
            Some(ips) => ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect(),
            None => {
                let mut addrs = vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)];
                if self.include_loopback {
                    addrs.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
                }
                addrs
            }
        }
    }
}

/// Configuration of one [`Peer`](crate::transport::Peer).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerConfig {
    /// Candidate gathering.
    pub ice: IceOptions,
    /// Codecs offered and accepted, in order of preference.
    pub codecs: Vec<Codec>,
    /// Packets buffered per inbound track before new ones are dropped (and
    /// counted in [`InboundTrack::dropped`](crate::transport::InboundTrack::dropped)).
    pub track_queue: usize,
    /// `SO_RCVBUF`/`SO_SNDBUF` for the UDP sockets, in bytes; 0 keeps the
    /// OS default (about 200 KiB on Linux, which a burst of video
    /// overflows). The kernel caps it at `net.core.rmem_max`/`wmem_max`.
    pub udp_buffer: usize,
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            ice: IceOptions::default(),
            codecs: vec![Codec::opus(), Codec::vp8()],
            track_queue: 1024,
            udp_buffer: 1 << 20,
        }
    }
}

impl PeerConfig {
    /// The default configuration, gathering on loopback only.
    pub fn loopback() -> Self {
        Self {
            ice: IceOptions::loopback_only(),
            ..Self::default()
        }
    }
}

/// Options for [`Participant::connect`](crate::transport::Participant::connect).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Limit on reaching the server and being admitted to the room.
    pub connect_timeout: Duration,
    /// Limit on one SDP round trip with the server (publish, unpublish).
    pub negotiation_timeout: Duration,
    /// How often to ping the server. The session is considered lost after
    /// three intervals without any message from it.
    pub ping_interval: Duration,
    /// Candidate gathering.
    pub ice: IceOptions,
    /// Codecs offered and accepted, in order of preference.
    pub codecs: Vec<Codec>,
    /// Packets buffered per remote track before new ones are dropped.
    pub track_queue: usize,
    /// UDP socket buffer size in bytes; see [`PeerConfig::udp_buffer`].
    pub udp_buffer: usize,
    /// After the signaling connection drops, how long to keep trying to
    /// reconnect and resume the session; zero disables reconnecting. Keep
    /// it under the server's resume grace.
    pub reconnect_window: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        let peer = PeerConfig::default();
        Self {
            connect_timeout: Duration::from_secs(10),
            negotiation_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(5),
            ice: peer.ice,
            codecs: peer.codecs,
            track_queue: peer.track_queue,
            udp_buffer: peer.udp_buffer,
            reconnect_window: Duration::from_secs(10),
        }
    }
}

impl ConnectOptions {
    /// The defaults, gathering ICE candidates on loopback only (tests, and
    /// an SFU on the same machine).
    pub fn loopback() -> Self {
        Self {
            ice: IceOptions::loopback_only(),
            ..Self::default()
        }
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`ping_interval`](Self::ping_interval).
    pub fn with_ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Sets [`reconnect_window`](Self::reconnect_window).
    pub fn with_reconnect_window(mut self, window: Duration) -> Self {
        self.reconnect_window = window;
        self
    }

    /// Sets [`ice`](Self::ice).
    pub fn with_ice(mut self, ice: IceOptions) -> Self {
        self.ice = ice;
        self
    }

    /// Sets [`codecs`](Self::codecs).
    pub fn with_codecs(mut self, codecs: Vec<Codec>) -> Self {
        self.codecs = codecs;
        self
    }

    /// The configuration each of the two transports gets.
    pub(crate) fn peer_config(&self) -> PeerConfig {
        PeerConfig {
            ice: self.ice.clone(),
            codecs: self.codecs.clone(),
            track_queue: self.track_queue,
            udp_buffer: self.udp_buffer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_gathering_adds_loopback_explicitly() {
        let addrs = IceOptions::default().bind_addrs();
        assert_eq!(addrs.len(), 2);
        assert!(addrs[0].ip().is_unspecified());
        assert!(addrs[1].ip().is_loopback());
        let no_lo = IceOptions {
            include_loopback: false,
            ..IceOptions::default()
        };
        assert_eq!(no_lo.bind_addrs().len(), 1);
    }

    #[test]
    fn loopback_only_binds_only_loopback() {
        let addrs = IceOptions::loopback_only().bind_addrs();
        assert_eq!(
            addrs,
            vec!["127.0.0.1:0".parse::<SocketAddr>().expect("socket address")]
        );
    }
}
