/** Splits a byte stream into lines, so a child's output is logged whole lines at a time. */
export async function forEachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for await (const chunk of stream) {
      buffer += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        onLine(buffer.slice(0, newline).replace(/\r$/, ""));
        buffer = buffer.slice(newline + 1);
      }
      // A child that never prints a newline must not grow our memory without bound.
      if (buffer.length > 65536) {
        onLine(buffer);
        buffer = "";
      }
    }
  } catch {
    // The child went away mid-write; what we have is all there is.
  }
  buffer += decoder.decode();
  if (buffer) onLine(buffer);
}
