/** Finds a port nobody is listening on, starting at `from`, skipping `reserved`. */
export function findFreePort(from: number, reserved: ReadonlySet<number>): number {
  for (let port = from; port <= 65535; port++) {
    if (!reserved.has(port) && isPortFree(port)) return port;
  }
  throw new Error(`no free port at or above ${from}`);
}

export function isPortFree(port: number): boolean {
  try {
    const probe = Bun.listen({ hostname: "0.0.0.0", port, socket: { data() {} } });
    probe.stop(true);
    return true;
  } catch {
    return false;
  }
}
