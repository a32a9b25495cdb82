import { describe, expect, it } from 'vitest';
import { ManifestError } from '../../src/errors.js';
import { parseCommandLine, tryParseCommandLine } from '../../src/manifest/command.js';

function problem(cmd: string): string {
  const result = tryParseCommandLine(cmd);
  if (!('problem' in result)) throw new Error(`expected ${JSON.stringify(cmd)} to be rejected`);
  return result.problem;
}

describe('parseCommandLine', () => {
  it.each([
    ['node mcp/index.js', ['node', 'mcp/index.js']],
    ['  node   dist/index.js  --port 0 ', ['node', 'dist/index.js', '--port', '0']],
    [`node "a b" 'c d' e\\ f`, ['node', 'a b', 'c d', 'e f']],
    [`node '$HOME' \\$PATH`, ['node', '$HOME', '$PATH']],
    ['npm ci --omit=dev', ['npm', 'ci', '--omit=dev']],
    ['python3 -m server ~/x', ['python3', '-m', 'server', '~/x']],
    [`node -e "console.log('x')"`, ['node', '-e', "console.log('x')"]],
  ])('splits %j into argv', (cmd, argv) => {
    expect(parseCommandLine(cmd)).toEqual(argv);
  });

  it.each([
    ['a | b', '|'],
    ['a && b', '&&'],
    ['a || b', '||'],
    ['a; b', ';'],
    ['a > out.log', '>'],
    ['a < in.txt', '<'],
    ['a >> out.log', '>>'],
    ['a &', '&'],
    ['(a)', '('],
  ])('rejects the shell operator in %j', (cmd, op) => {
    expect(problem(cmd)).toBe(
      `must not use the shell operator "${op}": commands run without a shell; give one program and its arguments (put pipelines or sequences in a script and run that)`,
    );
  });

  it('rejects variables and substitutions, quoted or not', () => {
    const expected = (name: string): string =>
      `must not use ${name}: commands run without a shell, so variables and substitutions are not expanded (declare values in configSchema with "env" instead)`;
    expect(problem('node $ENTRY')).toBe(expected('$ENTRY'));
    expect(problem('node --x=${FOO}bar')).toBe(expected('$FOO'));
    expect(problem('node "$HOME/x"')).toBe(expected('$HOME'));
    expect(problem('node $(pwd)/x')).toBe(expected('$(...)'));
    expect(problem('node `pwd`')).toBe(
      'must not use backticks: commands run without a shell, so command substitution is not supported',
    );
  });

  it('rejects globs, comments, env assignments, line breaks and empty commands', () => {
    expect(problem('node *.js')).toBe(
      'must not use the glob "*.js": commands run without a shell, so list files explicitly or quote the argument',
    );
    expect(problem('node index.js # start')).toBe(
      'must not contain a shell comment ("#..."): commands run without a shell',
    );
    expect(problem('NODE_ENV=production node index.js')).toBe(
      'must not start with the variable assignment "NODE_ENV=production": commands run without a shell (declare values in configSchema with "env" instead)',
    );
    expect(problem('node a.js\nnode b.js')).toBe('must be a single line without control characters');
    expect(problem('   ')).toBe(
      'must not be empty: give a program and its arguments, e.g. "node dist/index.js"',
    );
    expect(problem('""')).toBe('must name a program to run');
  });

  it('throws ManifestError naming where the command came from', () => {
    const where = 'plugins/core/x/manifest.json: /capabilities/mcp/startCommand';
    try {
      parseCommandLine('a | b', where);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ManifestError);
      expect((err as ManifestError).problems).toEqual([
        `${where} must not use the shell operator "|": commands run without a shell; give one program and its arguments (put pipelines or sequences in a script and run that)`,
      ]);
    }
    expect(() => parseCommandLine('')).toThrow(/^command "" must not be empty/);
  });
});
