export {
  createSandbox,
  LayeredSandbox,
  TENANT_REQUIRED_LAYERS,
  type SandboxMode,
  type SandboxOptions,
  type TenantPolicy,
} from './sandbox.js';
export { ReadPathPolicy } from './read-paths.js';
export { detectSandboxLayers, type DetectOptions } from './detect.js';
export type { CgroupLayout, DetectedLayers, IdentityMode, Probe, RootEntry } from './layers.js';
export { SANDBOX_DATA_DIR } from './launch-args.js';
