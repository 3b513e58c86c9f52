/**
 * Cluster mode (`[redis] url`, docs/cluster.md): several instances share Redis for locks, the
 * finalization queue, pressure numbers and publish notifications, and one data directory for
 * bytes. app.ts builds a ClusterMode when the URL is set and otherwise never loads this folder's
 * parts into play.
 */
export { ClusterMode, type ClusterModeName, type ClusterModeOptions, type ClusterReadiness, type InstanceStatusSource } from './cluster-mode.js';
export { ClusterLocker, type ClusterLockerOptions } from './cluster-locker.js';
export { ClusterQueueBackend, type ClusterQueueBackendOptions } from './cluster-queue-backend.js';
export { JournalMover, type JournalMoverOptions, type MovePass } from './journal-mover.js';
export { PublishFeed, type PublishFeedOptions } from './publish-feed.js';
export { InstanceRegistry, type InstanceRegistryOptions, type InstanceView } from './instance-registry.js';
export { RedisHealth, type RedisHealthOptions } from './redis-health.js';
export { closeClient, createClient, type ClientOptions, type ClientRole } from './redis-clients.js';
export { SharedCounts, type SharedCountsOptions } from './shared-counts.js';
export { ClusterClientLimits, type ClusterClientLimitsOptions } from './cluster-client-limits.js';
export { SharedUnfinishedUploads, type SharedUnfinishedOptions } from './shared-unfinished.js';
