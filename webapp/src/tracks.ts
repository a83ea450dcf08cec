/**
 * What the app reads from the server's track descriptions.
 *
 * @module
 */

import type { TrackInfo } from "../../client-sdk-js/src/index.js";

/**
 * Whether a remote video track is a screen share. The server's track
 * description does not name the source: a member's first video track is
 * its camera and any later one a screen (the app keeps its camera track
 * published while the camera is off, so the order holds for it).
 */
export function isScreen(info: TrackInfo, videoTracksOfPublisher: readonly TrackInfo[]): boolean {
  return videoTracksOfPublisher.findIndex((t) => t.track_id === info.track_id) > 0;
}
