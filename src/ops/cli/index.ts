/** The operator commands (uploads, queue, dlq, recover, verify): registered on the CLI program by cli.ts. */
export { registerOpsCommands, type LoadConfig } from './register.js';
export { EXIT, OpsFailure } from '../types.js';
