//! The display settings the app chose per remote track. The server applies
//! `track_settings` to the current subscription only, so they are sent
//! again after every `subscribed` for the track, until it is unpublished.

use crate::track::TrackSettings;
use signaling::proto::ClientMessage;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Default)]
pub(super) struct SettingsStore {
    wanted: HashMap<String, TrackSettings>,
    /// Tracks the server says it sends us now.
    subscribed: HashSet<String>,
}

impl SettingsStore {
    /// Remembers `settings`; the message to send now if the track is
    /// subscribed (the server refuses settings for any other).
    pub(super) fn set(&mut self, track_id: &str, settings: TrackSettings) -> Option<ClientMessage> {
        self.wanted.insert(track_id.to_owned(), settings);
        self.message(track_id)
    }

    /// Every remembered setting (to carry them to a new session).
    pub(super) fn all(&self) -> Vec<(String, TrackSettings)> {
        self.wanted.iter().map(|(id, s)| (id.clone(), *s)).collect()
    }

    /// `subscribed{track_id}`: the settings to send again, if any.
    pub(super) fn subscribed(&mut self, track_id: &str) -> Option<ClientMessage> {
        self.subscribed.insert(track_id.to_owned());
        self.message(track_id)
    }

    pub(super) fn unsubscribed(&mut self, track_id: &str) {
        self.subscribed.remove(track_id);
    }

    /// The track was unpublished: its settings are no longer wanted.
    pub(super) fn forget(&mut self, track_id: &str) {
        self.subscribed.remove(track_id);
        self.wanted.remove(track_id);
    }

    fn message(&self, track_id: &str) -> Option<ClientMessage> {
        let s = self.wanted.get(track_id)?;
        self.subscribed
            .contains(track_id)
            .then(|| ClientMessage::TrackSettings {
                track_id: track_id.to_owned(),
                visible: s.visible,
                max_width: s.max_width,
                max_height: s.max_height,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_go_out_while_subscribed_and_again_on_each_subscription() {
        let mut store = SettingsStore::default();
        let small = TrackSettings::max_size(320, 180);
        assert!(store.set("t", small).is_none(), "not subscribed yet");
        assert!(store.subscribed("t").is_some());
        store.unsubscribed("t");
        assert!(store.set("t", TrackSettings::hidden()).is_none());
        match store.subscribed("t") {
            Some(ClientMessage::TrackSettings { visible, .. }) => assert!(!visible),
            other => panic!("{other:?}"),
        }
        assert!(store.subscribed("other").is_none(), "nothing chosen");
        store.forget("t");
        assert!(store.subscribed("t").is_none(), "forgotten with the track");
        assert!(store.all().is_empty());
    }
}
