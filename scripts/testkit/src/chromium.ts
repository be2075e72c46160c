import { existsSync } from "node:fs";

/** Chromium for the browser suite and the foxtrot rehearsal: CHROMIUM_PATH, or Debian's package. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const hasChromium = () => existsSync(CHROMIUM);
