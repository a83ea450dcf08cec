/**
 * The participant list: every member with its microphone and camera state,
 * and whether it holds the room's keys (is in the MLS group).
 *
 * @module
 */

import { byId, h, icon } from "./dom.js";

/** One row of the list. */
export interface Person {
  key: string;
  name: string;
  identity: string;
  local: boolean;
  micOn: boolean;
  cameraOn: boolean;
  sharing: boolean;
}

/** Renders the list; `inGroup` says which identities the MLS roster holds. */
export function renderPeople(people: Person[], inGroup: ReadonlySet<string>): void {
  const list = byId<HTMLUListElement>("people-list");
  byId("people-count").textContent = String(people.length);
  byId("toggle-people").setAttribute("aria-label", `People, ${people.length} in the call`);
  list.replaceChildren(
    ...people.map((p) => {
      const states = [
        p.micOn ? "microphone on" : "muted",
        p.cameraOn ? "camera on" : "camera off",
        ...(p.sharing ? ["sharing the screen"] : []),
        inGroup.has(p.identity) ? "holds the room's keys" : "not yet in the encrypted group",
      ];
      return h(
        "li",
        { class: "person", "data-identity": p.identity, "aria-label": `${p.name}${p.local ? " (you)" : ""}: ${states.join(", ")}` },
        h("span", { class: "person-name" }, p.local ? `${p.name} (you)` : p.name),
        h(
          "span",
          { class: "person-state", "aria-hidden": "true" },
          p.sharing ? icon("screen") : "",
          icon(p.micOn ? "mic" : "micOff"),
          icon(p.cameraOn ? "camera" : "cameraOff"),
          inGroup.has(p.identity) ? icon("lock") : icon("warning"),
        ),
      );
    }),
  );
}
