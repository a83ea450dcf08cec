//! Building a `webrtc` peer connection the way the SDK needs it.

use super::keyframe_tap::KeyframeRequestTap;
use super::nack::NackResponder;
use super::runtime::BufferedTokio;
use crate::error::PeerError;
use crate::options::PeerConfig;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{NackGeneratorBuilder, Slot};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RtpCodecKind};
use std::sync::Arc;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCBundlePolicy, RTCConfigurationBuilder, RTCIceServer, Registry, SettingEngineBuilder,
};

/// Application-most: every other interceptor has seen inbound RTCP before
/// the tap picks the keyframe requests out of it. The built-in slots end
/// well below this.
const KEYFRAME_TAP_SLOT: usize = 14_000;

/// SRTP replay window, in packets.
const SRTP_REPLAY_WINDOW: usize = 1024;

/// webrtc's default interceptor chain (`register_default_interceptors`:
/// NACK generator and responder, TWCC receiver, receiver and sender
/// reports, and the simulcast header extensions), built from the same parts
/// but with our NACK responder in its slot, which keeps the header
/// extensions of what it resends (see `nack`). Registered on `engine` after
/// the codecs: the RTCP feedback goes to the codecs registered so far.
fn interceptors(engine: &mut MediaEngine) -> Result<Registry, PeerError> {
    // What `configure_nack` registers, with our responder.
    for parameter in ["", "pli"] {
        let feedback = RTCPFeedback {
            typ: "nack".to_owned(),
            parameter: parameter.to_owned(),
        };
        engine.register_feedback(feedback, RtpCodecKind::Video);
    }
    let registry = Registry::new()
        .with(Slot::NackResponder, NackResponder::default())
        .with(Slot::NackGenerator, NackGeneratorBuilder::new().build());
    configure_simulcast_extension_headers(engine)?;
    let registry = configure_twcc_receiver_only(registry, engine)?;
    Ok(configure_rtcp_reports(registry))
}

/// The configured codecs plus the interceptor chain above, and on top of it
/// the keyframe-request tap.
fn media(config: &PeerConfig) -> Result<(MediaEngine, Registry), PeerError> {
    let mut engine = MediaEngine::default();
    for codec in &config.codecs {
        let kind = match codec.kind {
            signaling::proto::TrackKind::Audio => {
                rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Audio
            }
            signaling::proto::TrackKind::Video => {
                rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video
            }
        };
        for params in codec.rtc_parameters() {
            engine.register_codec(params, kind)?;
        }
    }
    // The dependency descriptor carries frame boundaries and keyframes
    // outside the SFrame ciphertext, for the SFU and for reassembly here.
    engine.register_header_extension(
        rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
            uri: rtp_dd::URI.to_owned(),
        },
        rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video,
        None,
    )?;
    let registry = interceptors(&mut engine)?;
    let registry = registry.with(Slot::from(KEYFRAME_TAP_SLOT), KeyframeRequestTap::default());
    Ok((engine, registry))
}

/// Builds and starts a peer connection whose callbacks go to `handler`.
pub(super) async fn build(
    config: &PeerConfig,
    handler: Arc<dyn PeerConnectionEventHandler>,
) -> Result<Arc<dyn PeerConnection>, PeerError> {
    let (engine, registry) = media(config)?;
    let settings = SettingEngineBuilder::new()
        // mDNS would bind the multicast port 5353 and send on the LAN. The
        // SFU advertises an IP host candidate, so nothing here needs it.
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        // Read by nothing in webrtc 0.21 (binding 127.0.0.1 explicitly is
        // what gathers loopback; see `IceOptions`), set for later versions.
        .with_include_loopback_candidate(config.ice.include_loopback)
        // When we answer, we are the receiving side (the SFU offers the
        // subscriber transport). As DTLS server we finish the handshake
        // first, so our SRTP keys are in place before the sender, which
        // finishes second, can send media. As DTLS client, media sent the
        // moment the server finishes can arrive in the same read batch as
        // its last handshake flight; webrtc 0.21 decrypts that batch before
        // it installs the keys and drops those packets, the stream's first,
        // where NACK cannot see them.
        .with_answering_dtls_role(RTCDtlsRole::Server)
        // The default window is 64 packets, and SRTP rejects anything older
        // as a replay ("duplicated"). A NACK repair without RTX (audio) comes
        // back on the original sequence number a round trip plus the NACK
        // interval later: beyond 64 packets at high rates, so the repair
        // was thrown away. libwebrtc uses 1024 for the same reason.
        .with_srtp_replay_protection_window(SRTP_REPLAY_WINDOW)
        .build();
    let servers = config
        .ice
        .servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect();
    let configuration = RTCConfigurationBuilder::new()
        .with_ice_servers(servers)
        .with_bundle_policy(RTCBundlePolicy::MaxBundle)
        .build();
    let mut builder = PeerConnectionBuilder::new();
    if config.udp_buffer > 0 {
        builder = builder.with_runtime(Arc::new(BufferedTokio {
            udp_buffer: config.udp_buffer,
        }));
    }
    let pc = builder
        .with_configuration(configuration)
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .with_handler(handler)
        .with_udp_addrs(config.ice.bind_addrs())
        .build()
        .await?;
    Ok(Arc::new(pc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;

    /// The chain is webrtc's default one slot for slot, except for the
    /// responder: a webrtc upgrade that changes the default shows here.
    #[test]
    fn default_chain_with_our_nack_responder() {
        let theirs = register_default_interceptors(Registry::new(), &mut MediaEngine::default())
            .expect("default chain")
            .slots();
        let ours = interceptors(&mut MediaEngine::default())
            .expect("our chain")
            .slots();
        assert_eq!(ours.len(), theirs.len(), "{ours:?} vs {theirs:?}");
        for ((slot, name), (their_slot, their_name)) in ours.iter().zip(&theirs) {
            assert_eq!(slot, their_slot);
            if *slot == Slot::NackResponder {
                assert_eq!(name, "NackResponder");
                assert_eq!(their_name, "NackResponderInterceptor");
            } else {
                assert_eq!(name, their_name);
            }
        }
    }
}
