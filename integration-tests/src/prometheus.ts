/** Reads the Prometheus text exposition format that `/metrics` serves. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/gy;

export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const [, name = "", labelText = "", value = ""] = match;
    samples.push({ name, labels: parseLabels(labelText, line), value: Number(value) });
  }
  return samples;
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  let end = 0;
  for (let m = LABEL.exec(text); m; m = LABEL.exec(text)) {
    const [whole, key = "", raw = ""] = m;
    labels[key] = raw.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    end += whole.length;
  }
  if (end !== text.length) throw new Error(`unparseable labels in: ${line}`);
  return labels;
}

/** Samples of `name` whose labels include every given label. */
export function find(samples: Sample[], name: string, labels: Record<string, string> = {}) {
  return samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

/** Both services' `/metrics`, parsed. */
export async function scrapeStall(stall: {
  jafflrArrange: { get(path: string): Promise<{ text: string }> };
  chillybinArrange: { get(path: string): Promise<{ text: string }> };
}): Promise<Record<"jafflr" | "chillybin", Sample[]>> {
  const [jafflr, chillybin] = await Promise.all([
    stall.jafflrArrange.get("/metrics"),
    stall.chillybinArrange.get("/metrics"),
  ]);
  return { jafflr: parsePrometheus(jafflr.text), chillybin: parsePrometheus(chillybin.text) };
}

/** How many requests `http_requests_total` counted with these labels (summed over the rest). */
export function requestCount(samples: Sample[], labels: Record<string, string>): number {
  return find(samples, "http_requests_total", labels).reduce((sum, s) => sum + s.value, 0);
}
