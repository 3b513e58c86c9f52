export type RawConfig = Record<string, unknown>;

/** A config that starts but deserves the operator's attention. `code` is stable for grepping. */
export interface ConfigWarning {
  code:
    | 'CONFIG_UNKNOWN_KEY'
    /** A Go 3.x key read under its name here; the message says `→ new.key = effective value`. */
    | 'CONFIG_LEGACY_KEY'
    /** A Go 3.x key with nothing to do here; the message says why that changes nothing (or what does). */
    | 'CONFIG_LEGACY_IGNORED'
    /** A Go 3.x restriction this server cannot enforce, accepted in [migration] accept_unenforced. */
    | 'CONFIG_UNENFORCED'
    /** Allowed, but weakens security (e.g. a long v3 expiry grace). */
    | 'CONFIG_WEAK'
    | 'CONFIG_ADJUSTED'
    | 'CONFIG_NOT_IMPLEMENTED';
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
