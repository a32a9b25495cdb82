/**
 * TypeScript view of plugins/base/plugin-manifest.schema.json. The schema is the source of truth; the test
 * test/unit/manifest-types.test.ts proves the two agree (every schema property is here and vice versa).
 */
export type PluginType = 'channel' | 'mcp-connector' | 'retriever' | 'playbook' | 'workflow' | 'analytics';
export type McpAuthMethod = 'oauth2' | 'jwt' | 'apiKey';
export type TransportName = 'stdio' | 'sse' | 'websocket' | 'http';
/** Platform APIs a plugin may request. Adding an API = one enum value here and in the schema + one module. */
export type PlatformApiName = 'email';

export interface McpToolDeclaration {
  name: string;
  description?: string;
  input_schema?: Record<string, unknown>;
  /** Opt-in result cache for this tool. */
  cache?: ToolCacheSettings;
}

export interface ToolCacheSettings {
  ttlSeconds: number;
}

export type McpConnectionType = 'local' | 'remote';

export interface McpConnection {
  type: McpConnectionType;
  /** Remote servers only. */
  url?: string;
  /** Extra HTTP headers for remote servers; values may reference config fields as `${config.field}`. */
  headers?: Record<string, string>;
}

export interface McpCapabilities {
  connection?: McpConnection;
  /** One transport or alternatives separated by `|`, tried in order (e.g. `http|sse`). */
  transport?: string;
  tools?: McpToolDeclaration[];
  startCommand?: string;
  installCommand?: string;
  buildCommand?: string;
  auth?: McpAuthMethod[];
}

export interface UiCapabilities {
  settings?: boolean;
  components?: string[];
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface ApiRoute {
  method: HttpMethod;
  /** Starts with "/". */
  path: string;
  description?: string;
}

export interface ApiCapabilities {
  routes?: ApiRoute[];
}

export interface PluginCapabilities {
  mcp?: McpCapabilities;
  ui?: UiCapabilities;
  api?: ApiCapabilities;
}

export interface NetworkPermission {
  /** true: any outbound host. */
  all?: boolean;
  /** Host names or host:port the plugin may reach. */
  hosts?: string[];
}

export interface FilesystemPermission {
  /** Plugin gets a private writable data folder (always true in practice; declared for documentation). */
  data?: boolean;
  /** Extra read-only host paths. */
  read?: string[];
}

export interface PluginPermissions {
  api?: PlatformApiName[];
  env?: string[];
  network?: NetworkPermission;
  filesystem?: FilesystemPermission;
}

export type ConfigFieldType = 'string' | 'number' | 'boolean' | 'url' | 'select';

export interface ConfigField {
  type: ConfigFieldType;
  label?: string;
  description?: string;
  required?: boolean;
  default?: string | number | boolean;
  encrypted?: boolean;
  /** Environment variable the value is injected as into the plugin process. */
  env?: string;
  options?: string[];
}

export interface ResourceLimits {
  memoryMb?: number;
  cpuPercent?: number;
  maxProcesses?: number;
  maxOpenFiles?: number;
}

export interface RuntimeSettings {
  /** Pre-started instances for plugins with no per-org configuration. */
  warmInstances?: number;
  /**
   * Core (operator-installed) plugins only; ignored for custom ones. One process serves every organization:
   * each tools/call carries the organization in `_meta` (`hay/orgId`, `hay/config`, `hay/apiToken`), and
   * the process gets no organization's configuration, secrets or token in its environment. For plugins that
   * keep no per-organization state in the process or on disk.
   */
  shared?: boolean;
  maxConcurrentInstances?: number;
  idleTimeoutMs?: number;
  limits?: ResourceLimits;
  rateLimitPerMinute?: number;
}

export interface MarketplaceMetadata {
  category?: string;
  icon?: string;
  tags?: string[];
  homepage?: string;
  license?: string;
}

export interface HayPluginManifest {
  $schema?: string;
  id: string;
  name: string;
  version: string;
  description?: string;
  author?: string;
  type: PluginType[];
  entry?: string;
  capabilities?: PluginCapabilities;
  permissions?: PluginPermissions;
  configSchema?: Record<string, ConfigField>;
  dependencies?: Record<string, string>;
  runtime?: RuntimeSettings;
  marketplace?: MarketplaceMetadata;
  category?: string;
  icon?: string;
  tags?: string[];
}
