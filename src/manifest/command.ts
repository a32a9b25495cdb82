import { parse, type ParseEntry } from 'shell-quote';
import { ManifestError } from '../errors.js';

export type CommandParseResult = { argv: string[] } | { problem: string };

const NO_SHELL = 'commands run without a shell';

/**
 * Splits a manifest command (startCommand/installCommand/buildCommand) into argv for `spawn` without a
 * shell. Quotes and backslash escapes work as in sh; anything that needs a shell to mean something
 * (operators, redirects, globs, `$VAR`, `$(...)`, backticks, comments, `VAR=x` prefixes, line breaks)
 * is rejected with a ManifestError rather than silently passed through as a literal.
 *
 * `where` names the command in the message, e.g. `plugins/core/x/manifest.json: /capabilities/mcp/startCommand`;
 * without it the message starts with `command "<cmd>"`.
 */
export function parseCommandLine(cmd: string, where?: string): string[] {
  const result = tryParseCommandLine(cmd);
  if ('problem' in result) {
    throw new ManifestError([`${where ?? `command ${JSON.stringify(cmd)}`} ${result.problem}`]);
  }
  return result.argv;
}

/** Like parseCommandLine, but returns the rule that failed (text starting "must ...") instead of throwing. */
export function tryParseCommandLine(cmd: string): CommandParseResult {
  if (cmd.trim() === '')
    return { problem: 'must not be empty: give a program and its arguments, e.g. "node dist/index.js"' };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(cmd)) {
    return { problem: 'must be a single line without control characters' };
  }
  if (cmd.includes('`')) {
    return { problem: `must not use backticks: ${NO_SHELL}, so command substitution is not supported` };
  }

  let entries: (ParseEntry | { op: 'env'; key: string })[];
  try {
    entries = parse(cmd, (key: string) => ({ op: 'env' as const, key }));
  } catch (err) {
    return { problem: `cannot be parsed: ${err instanceof Error ? err.message : String(err)}` };
  }

  const argv: string[] = [];
  for (const entry of entries) {
    if (typeof entry === 'string') {
      argv.push(entry);
      continue;
    }
    if ('comment' in entry) {
      return { problem: `must not contain a shell comment ("#..."): ${NO_SHELL}` };
    }
    if (entry.op === 'env') {
      const name = 'key' in entry && entry.key !== '' ? `$${entry.key}` : '$(...)';
      return {
        problem: `must not use ${name}: ${NO_SHELL}, so variables and substitutions are not expanded (declare values in configSchema with "env" instead)`,
      };
    }
    if (entry.op === 'glob') {
      const pattern = 'pattern' in entry ? entry.pattern : '';
      return {
        problem: `must not use the glob ${JSON.stringify(pattern)}: ${NO_SHELL}, so list files explicitly or quote the argument`,
      };
    }
    return {
      problem: `must not use the shell operator ${JSON.stringify(entry.op)}: ${NO_SHELL}; give one program and its arguments (put pipelines or sequences in a script and run that)`,
    };
  }

  const first = argv[0];
  if (first === undefined || first === '') return { problem: 'must name a program to run' };
  if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(first)) {
    return {
      problem: `must not start with the variable assignment ${JSON.stringify(first)}: ${NO_SHELL} (declare values in configSchema with "env" instead)`,
    };
  }
  return { argv };
}
