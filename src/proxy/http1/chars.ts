/**
 * Character classes of HTTP/1.1 (RFC 9110 §5.6.2, RFC 9112 §3), as one lookup
 * table so that the parsers test a byte with one array read and a mask.
 */

/** tchar: the characters of a token (method, field name, transfer coding). */
export const TCHAR = 1;
/** field-vchar / obs-text, plus SP and HTAB: what a field value may contain. */
export const FIELD = 2;
/** What a request-target may contain: visible ASCII (llhttp's strict URL_CHAR plus `?` and `#`). */
export const TARGET = 4;
/** HEXDIG. */
export const HEX = 8;

export const CHAR_CLASS = (() => {
  const table = new Uint8Array(256);
  const tokenPunct = "!#$%&'*+-.^_`|~";
  for (let c = 0; c < 256; c++) {
    const ch = String.fromCharCode(c);
    let bits = 0;
    const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    if (alnum || tokenPunct.includes(ch)) bits |= TCHAR;
    if (c === 9 || (c >= 32 && c <= 126) || c >= 128) bits |= FIELD;
    if (c >= 33 && c <= 126) bits |= TARGET;
    if ((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)) bits |= HEX;
    table[c] = bits;
  }
  return table;
})();

/** A lower-case letter for an upper-case one, anything else as it is. */
export function lowerCode(c: number): number {
  return c >= 65 && c <= 90 ? c | 0x20 : c;
}

/** Case-insensitive comparison of `text.slice(start, end)` with `lower` (already lower case), without slicing. */
export function equalsLower(text: string, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if (lowerCode(text.charCodeAt(start + i)) !== lower.charCodeAt(i)) return false;
  return true;
}
