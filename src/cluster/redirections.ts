/**
 * The Redis reply behind the errors an ioredis Cluster client makes of its own. A call that meets
 * MOVED, ASK, TRYAGAIN or CLUSTERDOWN is resent by the client, up to `maxRedirections` replies; the
 * reply that uses up that budget is not passed on as it is but wrapped in a new Error whose message
 * is "Too many Cluster redirections. Last error: " followed by that reply as text
 * ("ReplyError: NOSCRIPT No matching script...") and which keeps nothing else of it. A slot-map
 * refresh that no node answers ends in ClusterAllFailedError, with the last node's error in
 * `lastNodeError`. What the call's last reply says (that the script was missing, that the user may
 * not run a command) is in there, and it decides what may be done next.
 */
const REDIRECTIONS_SPENT = 'Too many Cluster redirections. Last error: ';

/** The message of the Redis reply that ended the call: the error's own message unless ioredis wrapped it. */
export function lastReplyMessage(error: unknown): string {
  if (!(error instanceof Error)) return '';
  if (error.message.startsWith(REDIRECTIONS_SPENT)) {
    // The last reply as String(error) renders it: "<class name>: <message>".
    return error.message.slice(REDIRECTIONS_SPENT.length).replace(/^[A-Za-z]*Error: /, '');
  }
  const lastNodeError = (error as { lastNodeError?: unknown }).lastNodeError;
  if (lastNodeError instanceof Error) return lastNodeError.message;
  return error.message;
}

/** The call's redirections were used up: what ended it is `lastReplyMessage`. */
export function redirectionsSpent(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith(REDIRECTIONS_SPENT);
}
