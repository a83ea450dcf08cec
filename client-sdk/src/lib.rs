//! Client SDK. The first cut holds the WebRTC peer used by tests; E2EE comes with issue 3.
