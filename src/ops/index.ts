/**
 * Operations (issue 5), the server side: admin API routes for the queue, readiness checks,
 * recovery and verify, the server lock file. The operator commands are ./cli/ (their own door,
 * so the CLI does not load the server to print a table).
 */
export { opsAdminRoutes, queueStatus, type OpsRouteDeps } from './admin-routes.js';
export { discardTusUpload } from './tus-uploads.js';
export { offlineFilesystem, spaceReport, type SpaceReportSources } from './space-report.js';
export { queueOpsOf, type QueueOps } from './queue-ops.js';
export { opsReadinessChecks, storageReadiness, type OpsReadinessOptions, type StorageReadiness, type StorageReadinessOptions } from './readiness.js';
export { liveServerLock, readServerLock, removeServerLock, serverLockPath, writeServerLock, SERVER_LOCK_FILE, type ServerLock } from './server-lock.js';
export { acquireDataDirLock, dataDirLockPath, dataDirLockHeld, lockHolderPid, DataDirLockedError, DATA_DIR_LOCK_FILE, type DataDirLock } from './data-dir-lock.js';
export { EXIT, OpsFailure, type OpsApi, type SpaceReport } from './types.js';
export { quarantineAdminRoutes } from './quarantine-routes.js';
