/**
 * Small DOM helpers. Text is always set as text (never parsed as HTML), and
 * no inline style attribute is written: the Content-Security-Policy the
 * server sends allows neither inline scripts nor inline styles.
 *
 * @module
 */

type Attrs = Record<string, string | boolean | undefined>;

/** A new element with attributes (`true` sets an empty one, `false`/undefined none) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children);
  return el;
}

/** The element with this id, which the page must have. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`page lacks #${id}`);
  return el as T;
}

const SVG = "http://www.w3.org/2000/svg";

/** The app's icons: 24x24 outlines, drawn with `currentColor`. */
const ICONS = {
  mic: ["M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z", "M5 11a7 7 0 0 0 14 0", "M12 18v3"],
  micOff: ["M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z", "M5 11a7 7 0 0 0 14 0", "M12 18v3", "M3 3l18 18"],
  camera: ["M3 7h12v10H3z", "M15 10l6-3v10l-6-3"],
  cameraOff: ["M3 7h12v10H3z", "M15 10l6-3v10l-6-3", "M3 3l18 18"],
  screen: ["M3 4h18v12H3z", "M8 20h8", "M12 16v4", "M12 13V7", "M9 10l3-3 3 3"],
  chat: ["M4 5h16v11H9l-5 4z"],
  people: ["M9 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6z", "M3 20a6 6 0 0 1 12 0", "M16 5a3 3 0 0 1 0 6", "M18 14a5 5 0 0 1 3 6"],
  leave: ["M10 5H4v14h6", "M14 8l4 4-4 4", "M8 12h10"],
  lock: ["M6 11h12v9H6z", "M8 11V8a4 4 0 0 1 8 0v3"],
  warning: ["M12 3l10 18H2z", "M12 10v5", "M12 18v.5"],
} as const;

/** The name of one of the app's icons. */
export type IconName = keyof typeof ICONS;

/** An inline SVG icon, hidden from assistive technology (its control carries the label). */
export function icon(name: IconName): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `icon icon-${name}`);
  for (const d of ICONS[name]) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/** Replaces a button's icon (its first `svg`). */
export function setIcon(button: HTMLElement, name: IconName): void {
  const old = button.querySelector("svg");
  const next = icon(name);
  if (old === null) button.prepend(next);
  else old.replaceWith(next);
}
