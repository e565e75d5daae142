/**
 * Resolve after the event loop has had a turn (pending I/O, messages, timers), without a timer's clamping: Node's
 * setImmediate, or in a browser a MessageChannel message (setTimeout(0) is clamped to 4 ms once nested).
 */
export const nextTurn: () => Promise<void> = typeof setImmediate === "function"
  ? () => new Promise((resolve) => setImmediate(resolve))
  : channelTurn();

function channelTurn(): () => Promise<void> {
  const channel = new MessageChannel();
  const waiting: Array<() => void> = [];
  channel.port1.onmessage = () => waiting.shift()?.();
  return () => new Promise<void>((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(0);
  });
}
