/**
 * Fail points: named places where a test makes the daemon fail on purpose, so that the
 * recovery paths a broker's refusal or a host's crash would take run every time rather
 * than by the luck of a kill's timing (the practice of FoundationDB and TiKV).
 *
 * `FACTORSTREAM_FAILPOINTS="<place>=<n>:<action>[,…]"`: the nth time the daemon reaches the
 * place, `error` throws there (as a failed Kafka request would), `kill` ends the process
 * with SIGKILL (as a crash would), and `lost`, at a commit, lets the commit go through and
 * then throws (as a commit whose answer never came back would). Each fires once. Unset, as
 * in production, reaching a place is one lookup in an empty map.
 */

/**
 * The places: a transaction's checkpoint on disk before its commit, `close-commit` where it
 * carries a close's scores and `targets-commit` where it carries target weights; and
 * `close-archive`, a transaction with closes committed, before they are counted and
 * archived (kill only: after a commit there is no request left to refuse).
 */
export const FAILPOINT_PLACES = ['close-commit', 'targets-commit', 'close-archive'] as const;
export type FailpointPlace = (typeof FAILPOINT_PLACES)[number];
const ACTIONS = ['error', 'kill', 'lost'] as const;
type FailpointAction = (typeof ACTIONS)[number];
/** The actions each place takes. */
const ACTIONS_AT: Record<FailpointPlace, readonly FailpointAction[]> = { 'close-commit': ACTIONS, 'targets-commit': ACTIONS, 'close-archive': ['kill'] };

export const FAILPOINTS_ENV = 'FACTORSTREAM_FAILPOINTS';

export class FailpointError extends Error {
  override name = 'FailpointError';
}

export class Failpoints {
  /** Each armed place: the time it fires at, how many reachings are left until then, and what it does. */
  private readonly armed = new Map<FailpointPlace, { at: number; left: number; action: FailpointAction }>();

  /** Parses the variable's text ('' or undefined: none); throws on anything it does not know, naming it. */
  constructor(text: string | undefined) {
    for (const item of (text ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')) {
      const m = /^([a-z-]+)=(\d+):([a-z]+)$/.exec(item);
      const place = m?.[1] as FailpointPlace | undefined;
      const action = m?.[3] as FailpointAction | undefined;
      if (m === null || !FAILPOINT_PLACES.includes(place as FailpointPlace) || !ACTIONS.includes(action as FailpointAction) || Number(m[2]) < 1) {
        throw new Error(`${FAILPOINTS_ENV}: '${item}' is not <place>=<n>:<action> with place one of ${FAILPOINT_PLACES.join(', ')}, n ≥ 1 and action one of ${ACTIONS.join(', ')}`);
      }
      if (!ACTIONS_AT[place as FailpointPlace].includes(action as FailpointAction)) {
        throw new Error(`${FAILPOINTS_ENV}: '${item}': ${place} takes ${ACTIONS_AT[place as FailpointPlace].join(' or ')}`);
      }
      this.armed.set(place as FailpointPlace, { at: Number(m[2]), left: Number(m[2]), action: action as FailpointAction });
    }
  }

  /** What is armed, for the start-up log (empty: none). */
  get description(): string {
    return [...this.armed].map(([place, { at, action }]) => `${place}=${at}:${action}`).join(',');
  }

  /**
   * The daemon is at `place`: fails there if this is the armed time. Returns the error to
   * throw once the commit has gone through where the action is `lost` (else undefined).
   */
  reach(place: FailpointPlace): FailpointError | undefined {
    const armed = this.armed.get(place);
    if (armed === undefined || --armed.left > 0) return undefined;
    this.armed.delete(place);
    if (armed.action === 'kill') process.kill(process.pid, 'SIGKILL');
    const error = new FailpointError(`fail point ${place} (${FAILPOINTS_ENV}), reached ${armed.at} times${armed.action === 'lost' ? ': the commit went through, its answer lost' : ''}`);
    if (armed.action === 'lost') return error;
    throw error;
  }
}
