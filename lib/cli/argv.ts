/**
 * A quick reading of plain command lines, for commands whose start-up time is benchmarked
 * (ns-enter: loading and building yargs costs more than the container run itself). It reads
 * the SAME option definitions (the command's yargs builder is run against a recorder, not
 * copied) and handles only the plain forms: --name value, --name=value, -x value, booleans,
 * repeatable options, choices, defaults, positionals, and everything after `--`. Anything
 * else — help, an unknown or malformed option, a number as a positional (yargs makes it a
 * number), bundled short flags — returns undefined and yargs parses the line, with its messages.
 */
import type { Argv } from 'yargs';

interface OptionDefinition {
  type?: 'string' | 'boolean' | 'number';
  alias?: string | string[];
  array?: boolean;
  choices?: readonly unknown[];
  default?: unknown;
}

/** Runs a yargs builder against a recorder; undefined when it uses anything but .option() and .hide(). */
export function recordOptions(build: (y: Argv) => unknown): Map<string, OptionDefinition> | undefined {
  const options = new Map<string, OptionDefinition>();
  let plain = true;
  const recorder: unknown = new Proxy({}, {
    get(_target, property) {
      if (property === 'option' || property === 'options') {
        return (name: string, definition: OptionDefinition = {}) => {
          options.set(name, definition);
          return recorder;
        };
      }
      // Hiding an option from --help does not change how a line parses.
      if (property === 'hide') return () => recorder;
      plain = false;
      return () => recorder;
    },
  });
  build(recorder as Argv);
  return plain ? options : undefined;
}

const camelCase = (name: string) => name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/** Parses `argv` with the recorded options, or returns undefined to leave it to yargs. */
export function parsePlainArgv(options: Map<string, OptionDefinition>, argv: string[]): Record<string, unknown> | undefined {
  const byName = new Map<string, [string, OptionDefinition]>();
  for (const [name, definition] of options) {
    byName.set(name, [name, definition]);
    for (const alias of [definition.alias ?? []].flat()) byName.set(alias, [name, definition]);
  }
  const args: Record<string, unknown> = { _: [] };
  for (const [name, definition] of options) {
    if (definition.default !== undefined) args[name] = definition.default;
  }
  const dashDash = argv.indexOf('--');
  const before = dashDash === -1 ? argv : argv.slice(0, dashDash);
  for (let i = 0; i < before.length; i++) {
    const token = before[i] as string;
    const match = /^(--?)([^=]+)(?:=(.*))?$/s.exec(token);
    if (!match) {
      if (token.trim() !== '' && Number.isFinite(Number(token))) return undefined;
      (args._ as string[]).push(token);
      continue;
    }
    const [, dashes, key, inline] = match as unknown as [string, string, string, string | undefined];
    if (dashes === '-' && key.length !== 1) return undefined; // bundled short flags
    let entry = byName.get(key);
    let negated = false;
    if (!entry && key.startsWith('no-') && byName.get(key.slice(3))?.[1].type === 'boolean') {
      entry = byName.get(key.slice(3));
      negated = true;
    }
    if (!entry || key === 'help' || key === 'version') return undefined;
    const [name, definition] = entry;
    let value: unknown;
    if (definition.type === 'boolean') {
      if (inline === undefined) value = !negated;
      else if (inline === 'true' || inline === 'false') value = (inline === 'true') !== negated;
      else return undefined;
    } else {
      const text = inline ?? before[++i];
      if (text === undefined || (inline === undefined && text.startsWith('-'))) return undefined;
      value = definition.type === 'number' ? Number(text) : text;
      if (definition.type === 'number' && (text.trim() === '' || !Number.isFinite(value))) return undefined;
      if (definition.choices && !definition.choices.includes(value)) return undefined;
    }
    if (definition.array) args[name] = [...((args[name] as unknown[] | undefined) ?? []), value];
    else if (name in args && !(definition.default !== undefined && args[name] === definition.default)) return undefined; // given twice: yargs' rules
    else args[name] = value;
  }
  if (dashDash !== -1) args['--'] = argv.slice(dashDash + 1);
  for (const key of Object.keys(args)) if (key.includes('-') && key !== '--') args[camelCase(key)] = args[key];
  return args;
}
