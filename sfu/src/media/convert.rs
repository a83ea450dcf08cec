//! Translation between signaling's media boundary types and the core's.
//! The core does not depend on signaling, so the two stay separate.

use sfu_core::{Command, Event, Kind, Role};
use signaling::media::{MediaCommand, MediaEvent};
use signaling::proto::{Target, TrackKind};

pub(super) fn command(cmd: MediaCommand) -> Option<Command> {
    Some(match cmd {
        MediaCommand::Join {
            room,
            participant_id,
            can_publish,
            auto_subscribe,
            events: _,
        } => Command::Join {
            participant: participant_id,
            room,
            can_publish,
            auto_subscribe,
        },
        MediaCommand::Leave { participant_id } => Command::Leave {
            participant: participant_id,
        },
        MediaCommand::PublisherOffer {
            participant_id,
            sdp,
        } => Command::PublisherOffer {
            participant: participant_id,
            sdp,
        },
        MediaCommand::SubscriberAnswer {
            participant_id,
            sdp,
        } => Command::SubscriberAnswer {
            participant: participant_id,
            sdp,
        },
        MediaCommand::Candidate {
            participant_id,
            target,
            candidate,
        } => Command::Candidate {
            participant: participant_id,
            role: match target {
                Target::Publisher => Role::Publisher,
                Target::Subscriber => Role::Subscriber,
            },
            candidate: candidate.candidate,
        },
        MediaCommand::Publish {
            participant_id,
            track_id,
            track,
        } => Command::Publish {
            participant: participant_id,
            track_id,
            mid: track.mid,
            kind: match track.kind {
                TrackKind::Audio => Kind::Audio,
                TrackKind::Video => Kind::Video,
            },
            simulcast: track.simulcast,
        },
        MediaCommand::Unpublish {
            participant_id,
            track_id,
        } => Command::Unpublish {
            participant: participant_id,
            track_id,
        },
        MediaCommand::Subscribe {
            participant_id,
            track_id,
        } => Command::Subscribe {
            participant: participant_id,
            track_id,
        },
        MediaCommand::Unsubscribe {
            participant_id,
            track_id,
        } => Command::Unsubscribe {
            participant: participant_id,
            track_id,
        },
        _ => return None,
    })
}

pub(super) fn event(ev: Event) -> Option<MediaEvent> {
    Some(match ev {
        Event::PublisherAnswer { sdp } => MediaEvent::PublisherAnswer { sdp },
        Event::SubscriberOffer { sdp } => MediaEvent::SubscriberOffer { sdp },
        Event::Subscribed { track_id, mid } => MediaEvent::Subscribed { track_id, mid },
        Event::Unsubscribed { track_id } => MediaEvent::Unsubscribed { track_id },
        Event::Timeout => MediaEvent::Timeout,
        Event::Error { message } => MediaEvent::Error { message },
        _ => return None,
    })
}
