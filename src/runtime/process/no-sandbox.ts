import { expandDataDir } from '../plugin-env.js';
import type { LaunchSpec, PreparedLaunch, SandboxWrapper } from '../ports.js';

/** Runs plugins unwrapped: argv, cwd and env as given (`${HAY_PLUGIN_DATA_DIR}` references expanded). For tests and `sandbox: off`. */
export class NoSandbox implements SandboxWrapper {
  describe(): { active: string[]; unavailable: { layer: string; reason: string }[] } {
    return { active: [], unavailable: [] };
  }

  async prepare(spec: LaunchSpec): Promise<PreparedLaunch> {
    return { argv: [...spec.argv], cwd: spec.cwd, env: expandDataDir(spec.env), release: async () => {} };
  }
}
