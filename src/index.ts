/** The package's public surface: the host, its configuration, the typed API client and shared types. */
export { createHost, type Host, type HostServices } from './host.js';
export { loadConfig, describeConfig, DEFAULTS, type HostConfig } from './config.js';
export { createHayClient, TRPCClientError, type HayClient, type HayClientOptions } from './api/client.js';
export type { AppRouter } from './api/router.js';
export {
  HayError,
  ConfigError,
  ManifestError,
  NotFoundError,
  PreconditionError,
  ValidationError,
  AuthError,
  PermissionDeniedError,
  CapacityError,
  RateLimitError,
  TimeoutError,
  InstanceError,
  isHayError,
  type HayErrorCode,
} from './errors.js';
export type * from './manifest/types.js';
