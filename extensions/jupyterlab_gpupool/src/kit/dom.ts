/** A tiny element builder: the panel is plain DOM, re-rendered from the model. */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h(tag: string, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value as EventListener);
    } else if (key === 'className') {
      el.className = String(value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    el.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
  return el;
}

/** "1.5 GPUs", "1 GPU", "0.25 GPU" */
export function gpuCount(n: number): string {
  const rounded = Math.round(n * 100) / 100;
  return `${rounded} GPU${rounded > 1 ? 's' : ''}`;
}

/** "in 4 min", "in 2 h 5 min", "now" */
export function untilText(iso: string | null | undefined): string | null {
  if (!iso) {
    return null;
  }
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  if (Number.isNaN(seconds)) {
    return null;
  }
  return seconds <= 30 ? 'any moment now' : `in ${duration(seconds)}`;
}

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
  return `${hours} h ${m % 60} min`;
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
