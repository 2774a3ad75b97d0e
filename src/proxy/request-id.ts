/**
 * X-Request-Id values for requests that arrive without one: unique per
 * process and cheap, a random prefix and a counter (crypto.randomUUID per
 * request costs ~4 µs).
 */
export function requestIds(): () => string {
  const prefix = crypto.randomUUID().slice(0, 13);
  let counter = 0;
  return () => `${prefix}${(++counter).toString(36)}`;
}
