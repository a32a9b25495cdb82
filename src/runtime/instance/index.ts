export { InstanceManager } from './instance-manager.js';
export type { InstanceState, InstanceStateKind } from './state.js';
export type {
  InstanceInfo,
  InstanceManagerDeps,
  InstanceManagerEvents,
  InstanceManagerOptions,
  InstanceStateEvent,
  InstanceUsage,
  ToolsChangedEvent,
  UsageSummary,
} from './types.js';
