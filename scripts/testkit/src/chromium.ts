/**
 * Where the browser suite (integration-tests/browser) finds Chromium: CHROMIUM_PATH, or Debian's
 * package (`apt-get install -y chromium`; .ci/run installs it when missing). One answer for the
 * suite and for the foxtrot step 3 rehearsal, which runs that suite only when Chromium is there.
 */
import { existsSync } from "node:fs";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export function hasChromium(): boolean {
  return existsSync(CHROMIUM);
}
