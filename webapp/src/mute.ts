/**
 * Track mute through the SDK: `room.setTrackMuted(cid, muted)` tells the
 * others, the `trackMuted` event and `TrackInfo.muted` tell this page about
 * theirs. The seam is kept here, typed loosely, so the app works with an
 * SDK that lacks them (then only the local track is disabled and others see
 * silence or black, without an indicator).
 *
 * @module
 */

import type { Room, TrackInfo } from "../../client-sdk-js/src/index.js";

/** A remote track's mute change. */
export interface TrackMuted {
  participantId: string;
  trackId: string;
  muted: boolean;
}

interface MuteApi {
  setTrackMuted?: (cid: string, muted: boolean) => unknown;
  on(name: "trackMuted", listener: (e: TrackMuted) => void): () => void;
}

/** Tells the others that the local track `cid` is (un)muted, where the SDK can. */
export async function announceMuted(room: Room, cid: string, muted: boolean): Promise<void> {
  const api = room as unknown as MuteApi;
  if (typeof api.setTrackMuted === "function") await api.setTrackMuted.call(room, cid, muted);
}

/** Calls `listener` on every remote track's mute change. */
export function onTrackMuted(room: Room, listener: (e: TrackMuted) => void): () => void {
  return (room as unknown as MuteApi).on("trackMuted", listener);
}

/** Whether a track was muted when this page learnt of it. */
export function mutedAtStart(info: TrackInfo): boolean {
  return (info as TrackInfo & { muted?: boolean }).muted === true;
}

/**
 * Whether a remote video track is a screen share. The server's track
 * description may name the source; without it, a member's first video
 * track is its camera and any later one a screen (the app keeps its camera
 * track published while the camera is off, so the order holds for it).
 */
export function isScreen(info: TrackInfo, videoTracksOfPublisher: readonly TrackInfo[]): boolean {
  const source = (info as TrackInfo & { source?: string }).source;
  if (typeof source === "string") return source === "screen" || source === "screen_share";
  return videoTracksOfPublisher.findIndex((t) => t.track_id === info.track_id) > 0;
}
