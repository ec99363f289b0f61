/**
 * Man pages generated from the same definitions as --help (purpose, usage, flags, examples),
 * so the two never disagree. `scripts/postbuild.mjs` writes dist/man/<command>.1.
 */
import { buildParser, VERSION, type CommandSpec } from './command.js';

interface ParserIntrospection {
  getOptions(): {
    key: Record<string, boolean>;
    alias: Record<string, string[]>;
    default: Record<string, unknown>;
    choices: Record<string, unknown[]>;
    boolean: string[];
    hiddenOptions: string[];
  };
  getInternalMethods(): { getUsageInstance(): { getDescriptions(): Record<string, string | undefined> } };
}

function roff(text: string): string {
  return text.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^\./gm, '\\&.').replace(/^'/gm, "\\&'");
}

export function renderManPage<A>(spec: CommandSpec<A>, date = new Date()): string {
  const parser = buildParser(spec, []) as unknown as ParserIntrospection;
  const options = parser.getOptions();
  const descriptions = parser.getInternalMethods().getUsageInstance().getDescriptions();
  const aliases = new Set(Object.values(options.alias).flat());
  const title = spec.name.toUpperCase();
  const month = date.toISOString().slice(0, 7);
  const [synopsis, ...usageRest] = spec.usage.replace(/\$0/g, spec.name).split('\n');
  const lines = [
    `.TH ${title} 1 "${month}" "container-parts ${VERSION}" "container-parts manual"`,
    '.SH NAME',
    `${spec.name} \\- ${roff(spec.purpose)}`,
    '.SH SYNOPSIS',
    roff(synopsis ?? spec.name),
    '.SH DESCRIPTION',
    roff(spec.purpose),
  ];
  const detail = usageRest.join('\n').trim();
  if (detail) lines.push('.PP', roff(detail));
  lines.push(
    '.PP',
    'Reads one JSON document on standard input when it is not a terminal (or \\fB\\-\\-input\\fR FILE), adds its own section, passes the others through, and writes the document as one line on standard output. Exit status: 0 done, 1 failed, 2 bad input or flags.',
    '.SH OPTIONS',
  );
  for (const key of Object.keys(options.key)) {
    if (aliases.has(key) || options.hiddenOptions.includes(key)) continue;
    const flagNames = [key, ...(options.alias[key] ?? [])].map((k) => (k.length === 1 ? `-${k}` : `--${k}`));
    const isBoolean = options.boolean.includes(key);
    const choices = options.choices[key];
    const value = isBoolean ? '' : choices ? ` ${choices.join('|')}` : ' VALUE';
    const description = (descriptions[key] ?? '').replace(/^__yargsString__:/, '');
    const fallback = options.default[key];
    lines.push('.TP', `.B ${roff(flagNames.join(', '))}${roff(value)}`, roff(`${description}${fallback !== undefined && !isBoolean ? ` (default: ${String(fallback)})` : ''}`));
  }
  if (spec.examples.length) {
    lines.push('.SH EXAMPLES');
    for (const [command, description] of spec.examples) lines.push('.TP', roff(description), '.nf', roff(command.replace(/\$0/g, spec.name)), '.fi');
  }
  lines.push('.SH SEE ALSO', 'img\\-fetch(1), img\\-unpack(1), ovl\\-mount(1), ns\\-enter(1), oci\\-spec(1), skopeo(1), umoci(1), runc(8)');
  return `${lines.join('\n')}\n`;
}
