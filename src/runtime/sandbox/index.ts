export { createSandbox, LayeredSandbox, type SandboxMode, type SandboxOptions } from './sandbox.js';
export { detectSandboxLayers, type DetectOptions } from './detect.js';
export type { CgroupLayout, DetectedLayers, IdentityMode, Probe, RootEntry } from './layers.js';
export { SANDBOX_DATA_DIR } from './launch-args.js';
