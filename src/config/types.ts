export type RawConfig = Record<string, unknown>;

/** A config that starts but deserves the operator's attention. `code` is stable for grepping. */
export interface ConfigWarning {
  code: 'CONFIG_UNKNOWN_KEY' | 'CONFIG_LEGACY_KEY' | 'CONFIG_ADJUSTED' | 'CONFIG_NOT_IMPLEMENTED';
  path: string;
  message: string;
}

export interface ConfigIssue {
  path: string;
  message: string;
}

/** A config that cannot start. Each issue names its key path and the reason. */
export class ConfigError extends Error {
  constructor(readonly issues: ConfigIssue[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('; '));
    this.name = 'ConfigError';
  }
}
