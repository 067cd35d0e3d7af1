/** Fail points (src/daemon/failpoints.ts): the variable's grammar, and firing once, at the nth time. */
import { describe, expect, it } from 'vitest';
import { FailpointError, Failpoints } from '../src/daemon/failpoints.js';

describe('fail points', () => {
  it('none armed: reaching a place does nothing', () => {
    for (const text of [undefined, '', ' , ']) {
      const f = new Failpoints(text);
      expect(f.description).toBe('');
      for (let i = 0; i < 5; i++) f.reach('close-commit');
    }
  });

  it('error: throws the nth time the place is reached, and only then', () => {
    const f = new Failpoints('close-commit=3:error');
    expect(f.description).toBe('close-commit=3:error');
    f.reach('close-commit');
    f.reach('close-commit');
    expect(() => f.reach('close-commit')).toThrow(FailpointError);
    for (let i = 0; i < 5; i++) f.reach('close-commit');
  });

  it('places armed together fire apart', () => {
    const f = new Failpoints('close-commit=2:error, targets-commit=1:error');
    expect(f.description).toBe('close-commit=2:error,targets-commit=1:error');
    expect(() => f.reach('targets-commit')).toThrow('fail point targets-commit');
    f.reach('close-commit');
    expect(() => f.reach('close-commit')).toThrow('fail point close-commit');
    f.reach('targets-commit');
  });

  it('refuses what it does not know, naming it', () => {
    expect(() => new Failpoints('targets-commit=1:error,close-commit=0:kill')).toThrow(`'close-commit=0:kill' is not <place>=<n>:<action>`);
    for (const bad of ['close-commit=0:error', 'close-commit=2:explode', 'commit=2:error', 'close-commit:2:error', 'close-commit=x:kill']) {
      expect(() => new Failpoints(bad), bad).toThrow(`'${bad}' is not <place>=<n>:<action>`);
    }
  });

  it('lost: returns the error for after the commit instead of throwing, the nth time', () => {
    const f = new Failpoints('targets-commit=2:lost');
    expect(f.reach('targets-commit')).toBeUndefined();
    const lost = f.reach('targets-commit');
    expect(lost).toBeInstanceOf(FailpointError);
    expect(lost?.message).toMatch(/fail point targets-commit .*reached 2 times: the commit went through, its answer lost/);
    expect(f.reach('targets-commit')).toBeUndefined();
    expect(() => new Failpoints('close-archive=1:lost')).toThrow(`close-archive takes kill`);
  });

  it('close-archive (after a commit) takes kill only: there is no request left to refuse', () => {
    expect(() => new Failpoints('close-archive=1:error')).toThrow(`'close-archive=1:error': close-archive takes kill`);
    expect(new Failpoints('close-archive=2:kill').description).toBe('close-archive=2:kill');
  });
});
