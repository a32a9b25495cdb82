import type { LaunchSpec, PreparedLaunch, SandboxWrapper } from '../ports.js';

/** Runs plugins unwrapped: argv, cwd and env exactly as given. For tests and `sandbox: off`. */
export class NoSandbox implements SandboxWrapper {
  describe(): { active: string[]; unavailable: { layer: string; reason: string }[] } {
    return { active: [], unavailable: [] };
  }

  async prepare(spec: LaunchSpec): Promise<PreparedLaunch> {
    return { argv: [...spec.argv], cwd: spec.cwd, env: { ...spec.env }, release: async () => {} };
  }
}
