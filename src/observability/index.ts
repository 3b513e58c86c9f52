export { createLogger, type Logger, type LoggerOptions } from './logger.js';
export * as metrics from './metrics.js';
