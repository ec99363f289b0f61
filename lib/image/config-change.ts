/**
 * `--change` instructions, the Dockerfile forms `docker commit --change` takes: CMD, ENTRYPOINT,
 * ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME and STOPSIGNAL, each applied to an image config's
 * `config` object. CMD, ENTRYPOINT and VOLUME take the JSON form or the shell form; ENV and
 * LABEL take `KEY=VALUE …` (quotes as a shell has them) or the old `ENV KEY VALUE`.
 */
import { posix } from 'node:path';
import { UsageError } from '../core/errors.js';
import type { ImageConfig } from './model.js';

type RunConfig = NonNullable<ImageConfig['config']>;

const INSTRUCTIONS: Record<string, (config: RunConfig, rest: string) => void> = {
  CMD: (config, rest) => (config.Cmd = commandForm(rest)),
  ENTRYPOINT: (config, rest) => (config.Entrypoint = commandForm(rest)),
  ENV: (config, rest) => {
    for (const [key, value] of pairs(rest, 'ENV')) config.Env = [...(config.Env ?? []).filter((e) => e.split('=')[0] !== key), `${key}=${value}`];
  },
  LABEL: (config, rest) => {
    config.Labels = { ...(config.Labels ?? {}), ...Object.fromEntries(pairs(rest, 'LABEL')) };
  },
  WORKDIR: (config, rest) => (config.WorkingDir = posix.resolve(config.WorkingDir || '/', words(rest, 'WORKDIR', 1)[0] as string)),
  USER: (config, rest) => (config.User = words(rest, 'USER', 1)[0] as string),
  STOPSIGNAL: (config, rest) => (config.StopSignal = words(rest, 'STOPSIGNAL', 1)[0] as string),
  EXPOSE: (config, rest) => {
    const ports = words(rest, 'EXPOSE').map((port) => {
      if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(port)) throw new UsageError(`--change EXPOSE: ${JSON.stringify(port)} is not PORT[/tcp|udp|sctp]`);
      return port.includes('/') ? port.toLowerCase() : `${port}/tcp`;
    });
    config.ExposedPorts = { ...(config.ExposedPorts ?? {}), ...Object.fromEntries(ports.map((p) => [p, {}])) };
  },
  VOLUME: (config, rest) => {
    const volumes = jsonArray(rest) ?? words(rest, 'VOLUME');
    config.Volumes = { ...(config.Volumes ?? {}), ...Object.fromEntries(volumes.map((v) => [v, {}])) };
  },
};

/** Applies `changes` in order to a copy of `config`; an unknown or malformed instruction is a UsageError. */
export function applyChanges(config: RunConfig, changes: string[]): RunConfig {
  const result: RunConfig = structuredClone(config);
  for (const change of changes) {
    const match = /^\s*([A-Za-z]+)\s*([\s\S]*)$/.exec(change);
    const apply = match && INSTRUCTIONS[(match[1] as string).toUpperCase()];
    if (!match || !apply) throw new UsageError(`--change ${JSON.stringify(change)}: takes ${Object.keys(INSTRUCTIONS).join(', ')}`);
    apply(result, (match[2] as string).trim());
  }
  return result;
}

/** `["a","b"]` as it is; anything else is the shell form `/bin/sh -c REST`. */
function commandForm(rest: string): string[] {
  return jsonArray(rest) ?? ['/bin/sh', '-c', rest];
}

function jsonArray(rest: string): string[] | undefined {
  if (!rest.startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(rest);
    if (Array.isArray(parsed) && parsed.every((p) => typeof p === 'string')) return parsed;
  } catch {
    // not JSON: the shell form
  }
  return undefined;
}

/** `K=V K2="V 2"`, or the old form `K V W` (one pair, the value the rest of the line). */
function pairs(rest: string, instruction: string): Array<[string, string]> {
  const tokens = words(rest, instruction);
  if (!(tokens[0] as string).includes('=')) {
    const value = rest.slice(rest.search(/\s/) + 1).trim();
    if (tokens.length < 2) throw new UsageError(`--change ${instruction}: needs KEY=VALUE (or KEY VALUE)`);
    return [[tokens[0] as string, value]];
  }
  return tokens.map((token) => {
    const eq = token.indexOf('=');
    if (eq <= 0) throw new UsageError(`--change ${instruction}: ${JSON.stringify(token)} is not KEY=VALUE`);
    return [token.slice(0, eq), token.slice(eq + 1)];
  });
}

/** Words as a shell splits them: quotes group, a backslash escapes (inside double quotes too). */
function words(rest: string, instruction: string, exactly?: number): string[] {
  const result: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i] as string;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < rest.length) word += rest[++i] as string;
      else word += c;
    } else if (/\s/.test(c)) {
      if (word !== undefined) result.push(word);
      word = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else word = (word ?? '') + (c === '\\' && i + 1 < rest.length ? (rest[++i] as string) : c);
  }
  if (quote) throw new UsageError(`--change ${instruction}: unterminated ${quote}`);
  if (word !== undefined) result.push(word);
  if (result.length === 0 || (exactly !== undefined && result.length !== exactly)) throw new UsageError(`--change ${instruction}: needs ${exactly === 1 ? 'one value' : 'a value'}`);
  return result;
}
