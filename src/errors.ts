/**
 * Every error the host raises on purpose. Each class carries a stable `code`; the API maps codes to
 * tRPC/HTTP codes in one place (src/api/error-map.ts). Messages are written for the caller to act on
 * and never contain stacks or secrets.
 */
export type HayErrorCode =
  | 'CONFIG_INVALID'
  | 'MANIFEST_INVALID'
  | 'PLUGIN_NOT_FOUND'
  | 'TOOL_NOT_FOUND'
  | 'ORG_NOT_FOUND'
  | 'PLUGIN_NOT_ENABLED'
  | 'PLUGIN_NOT_READY'
  | 'INSTALL_FAILED'
  | 'BUILD_FAILED'
  | 'CONFIGURATION_INVALID'
  | 'ARGUMENTS_INVALID'
  | 'TOOL_OUTPUT_INVALID'
  | 'INPUT_INVALID'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'ORIGIN_NOT_ALLOWED'
  | 'PERMISSION_DENIED'
  | 'CAPACITY'
  | 'RATE_LIMITED'
  | 'TIMEOUT'
  | 'INSTANCE_FAILED'
  | 'INSTANCE_CRASHED'
  | 'SHUTTING_DOWN'
  | 'UPLOAD_INVALID'
  | 'CONFLICT'
  | 'SECRET_KEY_INVALID'
  | 'SANDBOX_UNAVAILABLE'
  | 'DEPENDENCY_UNSATISFIED'
  | 'HAS_DEPENDENTS'
  | 'VERSION_NOT_FOUND'
  | 'EGRESS_DENIED'
  | 'DELIVERY_NOT_FOUND'
  | 'ENDPOINT_NOT_FOUND'
  | 'CATALOG_ENTRY_NOT_FOUND'
  | 'RESPONSE_TOO_LARGE'
  | 'AUTHORIZATION_REQUIRED'
  | 'AUTHORIZATION_FAILED'
  | 'DEFINITION_INVALID'
  | 'INTERNAL';

export class HayError extends Error {
  readonly code: HayErrorCode;
  /** Extra machine-readable facts safe to show the caller (e.g. retryAfterMs). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: HayErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.details = options?.details;
  }
}

export class ConfigError extends HayError {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
  }
}

export class ManifestError extends HayError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('MANIFEST_INVALID', problems.join('; '));
    this.problems = problems;
  }
}

/** A no-code plugin definition (src/builder/) breaks its schema or a rule; `details.problems` lists each. */
export class DefinitionError extends HayError {
  constructor(problems: readonly { pointer: string; message: string }[]) {
    super('DEFINITION_INVALID', problems.map((p) => `${p.pointer || '/'} ${p.message}`).join('; '), {
      details: { problems },
    });
  }
}

export class NotFoundError extends HayError {
  constructor(
    code:
      | 'PLUGIN_NOT_FOUND'
      | 'TOOL_NOT_FOUND'
      | 'ORG_NOT_FOUND'
      | 'DELIVERY_NOT_FOUND'
      | 'ENDPOINT_NOT_FOUND'
      | 'CATALOG_ENTRY_NOT_FOUND',
    message: string,
  ) {
    super(code, message);
  }
}

export class PreconditionError extends HayError {
  constructor(
    code: 'PLUGIN_NOT_ENABLED' | 'PLUGIN_NOT_READY' | 'INSTALL_FAILED' | 'BUILD_FAILED' | 'INSTANCE_FAILED',
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(code, message, details ? { details } : undefined);
  }
}

export class ValidationError extends HayError {
  constructor(
    code: 'CONFIGURATION_INVALID' | 'ARGUMENTS_INVALID' | 'INPUT_INVALID' | 'UPLOAD_INVALID',
    message: string,
  ) {
    super(code, message);
  }
}

export class AuthError extends HayError {
  constructor(code: 'UNAUTHORIZED' | 'FORBIDDEN', message: string) {
    super(code, message);
  }
}

/** A request to `/mcp` whose `Host` or `Origin` is not on the operator's allow-list (DNS rebinding). */
export class OriginNotAllowedError extends HayError {
  constructor(message: string) {
    super('ORIGIN_NOT_ALLOWED', message);
  }
}

export class PermissionDeniedError extends HayError {
  constructor(pluginId: string, api: string) {
    super(
      'PERMISSION_DENIED',
      `Plugin ${pluginId} does not have permission to access ${api}. Add "${api}" to permissions.api in manifest.json`,
    );
  }
}

/** A plugin needs (new) OAuth authorization from an org admin before it can be used for that org. */
export class AuthorizationRequiredError extends HayError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('AUTHORIZATION_REQUIRED', message, details ? { details } : undefined);
  }
}

/** An authorization step with a remote authorization server failed (callback, token exchange, revoke). */
export class AuthorizationFailedError extends HayError {
  constructor(message: string) {
    super('AUTHORIZATION_FAILED', message);
  }
}

export class CapacityError extends HayError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CAPACITY', message, details ? { details } : undefined);
  }
}

export class RateLimitError extends HayError {
  constructor(message: string, retryAfterMs: number) {
    super('RATE_LIMITED', message, { details: { retryAfterMs } });
  }
}

export class TimeoutError extends HayError {
  constructor(message: string) {
    super('TIMEOUT', message);
  }
}

export class InstanceError extends HayError {
  constructor(
    code: 'INSTANCE_FAILED' | 'INSTANCE_CRASHED' | 'SHUTTING_DOWN',
    message: string,
    cause?: unknown,
    details?: Record<string, unknown>,
  ) {
    super(code, message, {
      ...(cause !== undefined ? { cause } : {}),
      ...(details !== undefined ? { details } : {}),
    });
  }
}

/** A plugin dependency rule refused the change (src/lifecycle/dependencies.ts); the message names the plugins. */
export class DependencyError extends HayError {
  constructor(
    code: 'DEPENDENCY_UNSATISFIED' | 'HAS_DEPENDENTS',
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(code, message, details ? { details } : undefined);
  }
}

/**
 * An outbound connection made for a tenant was refused by the egress policy (EGRESS_DENIED), or a remote
 * response exceeded its size cap (RESPONSE_TOO_LARGE). Messages name the host/address and the rule.
 */
export class EgressError extends HayError {
  constructor(
    code: 'EGRESS_DENIED' | 'RESPONSE_TOO_LARGE',
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(code, message, details ? { details } : undefined);
  }
}

/** EGRESS_DENIED without details (the events area's checks name the address in the message). */
export class EgressDeniedError extends EgressError {
  constructor(message: string) {
    super('EGRESS_DENIED', message);
  }
}

/**
 * A plugin answered a tool call with a result that breaks the tool's own `outputSchema` (structuredContent
 * missing or not matching). The message names the plugin, the tool and the first mismatching paths.
 */
export class ToolOutputError extends HayError {
  constructor(message: string) {
    super('TOOL_OUTPUT_INVALID', message);
  }
}

export function isHayError(err: unknown): err is HayError {
  return err instanceof HayError;
}

/** A message safe for callers: HayError messages as-is, anything else generic. */
export function publicMessage(err: unknown): string {
  return isHayError(err) ? err.message : 'Internal error';
}
