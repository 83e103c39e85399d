/** Words and numbers, the same in the lab panel and the admin page. */

/** "1.5 GPUs", "1 GPU", "0.25 GPU" */
export function gpuCount(n: number | null | undefined): string {
  if (n === null || n === undefined) {
    return '';
  }
  const rounded = Math.round(n * 100) / 100;
  return `${rounded} GPU${rounded > 1 ? 's' : ''}`;
}

/** "42 s", "4 min", "2 h 5 min", "3 days" */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  const m = Math.round(s / 60);
  if (m < 60) {
    return `${m} min`;
  }
  const hours = Math.floor(m / 60);
  if (hours < 48) {
    return `${hours} h ${m % 60} min`;
  }
  return `${Math.round(hours / 24)} days`;
}

/**
 * GPU-hours a workload has held so far over all its runs (its attained service: inside a team, work
 * that has held less goes first), to a tenth: "0.4", "<0.1", "230"; "" for work that never held a GPU.
 */
export function heldGpuHours(attainedGpuSeconds: number | null | undefined): string {
  const s = attainedGpuSeconds ?? 0;
  if (!(s > 0)) {
    return '';
  }
  const hours = s / 3600;
  return hours < 0.1 ? '<0.1' : hours < 100 ? hours.toFixed(1) : String(Math.round(hours));
}

/** How long ago an ISO time was, as a duration ("" without one). */
export function since(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) {
    return '';
  }
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '' : duration((now - t) / 1000);
}

/** Seconds from ``from`` to ``to`` (or now), null when ``from`` is missing. */
export function elapsedSeconds(from: string | null | undefined, to?: string | null, now: number = Date.now()): number | null {
  if (!from) {
    return null;
  }
  const start = Date.parse(from);
  const end = to ? Date.parse(to) : now;
  return Number.isNaN(start) || Number.isNaN(end) ? null : Math.max(0, (end - start) / 1000);
}

/** "in 4 min", "in 2 h 5 min", "any moment now"; null without a time. */
export function untilText(iso: string | null | undefined, now: number = Date.now()): string | null {
  if (!iso) {
    return null;
  }
  const seconds = (Date.parse(iso) - now) / 1000;
  if (Number.isNaN(seconds)) {
    return null;
  }
  return seconds <= 30 ? 'any moment now' : `in ${duration(seconds)}`;
}

/** "Dec 4, 10:32:05": an event's time. */
export function clock(iso: string): string {
  return new Date(iso).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** "dgx1:0, dgx1:1×0.5": where a workload's GPUs are. */
export function placement(shares: { node: string; index: number; fraction: number }[] | null | undefined): string {
  return (shares ?? []).map(s => `${s.node}:${s.index}${s.fraction < 1 ? `×${s.fraction}` : ''}`).join(', ');
}

/**
 * Split a command line the way a shell would for simple cases: words separated by
 * spaces, with '...' and "..." keeping spaces inside one word.
 */
export function splitCommand(line: string): string[] {
  const words: string[] = [];
  let current = '';
  let quote: string | null = null;
  let inWord = false;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) {
        quote = null;
      } else {
        current += ch;
      }
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) {
        words.push(current);
        current = '';
        inWord = false;
      }
    } else {
      current += ch;
      inWord = true;
    }
  }
  if (quote) {
    throw new Error(`the command has an unclosed ${quote} quote`);
  }
  if (inWord) {
    words.push(current);
  }
  return words;
}

/** A command as one line a shell would read back (quotes only where a word needs them). */
export function joinCommand(words: string[] | null | undefined): string {
  return (words ?? []).map(w => (w === '' || /[\s'"]/.test(w) ? (w.includes("'") ? `"${w}"` : `'${w}'`) : w)).join(' ');
}
